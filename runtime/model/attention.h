// Attention: the scaled-dot-product attention every family shares, set up once per forward pass for
// all blocks — the additive mask (causal or bidirectional, padding, sliding window, an always-visible
// prefix), the positions' rotary tables, and the KV cache — and called by each block with its own
// q, k, v. Grouped-query attention runs without repeating keys: the query heads of one KV head are
// stacked. Scores and softmax are in float32, as transformers computes them.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "runtime/model/model_config.h"

namespace lopa {

class KVCache;

struct AttentionShape {
  int64_t heads_local = 0, kv_heads_local = 0, head_dim = 0;
  RotaryStyle rotary = RotaryStyle::None;
  int64_t rotary_dim = 0;
  int64_t sliding_window = 0;
  bool causal = true;
  bool fp32_scores = false;  // q·kᵀ itself in float32 for low-precision inputs (CodeGen, Phi)
};

class Attention {
 public:
  // mask_all: B × (past + T) over cached + new positions (1 real); all_real: no zero in it.
  // positions: B × T (already counting a prefix of P cached positions). inv_freq: rotary_dim/2 floats.
  Attention(const AttentionShape& shape, const at::Tensor& mask_all, bool all_real, const at::Tensor& positions,
            const at::Tensor& inv_freq, at::ScalarType dtype, KVCache* cache, int64_t T);

  void set_layer(int64_t layer) { layer_ = layer; }
  // From now on (the last block) only positions from..T-1 query: a block computes its queries, its
  // residual stream and its MLP for those positions only (queries(x)), and keys and values for all.
  // Nothing after the last block reads the other positions' states when only the loss's are needed.
  void keep_queries_from(int64_t from) { query_from_ = from; }
  // x: B × T × … → the querying positions' rows, B × (T - from) × ….
  at::Tensor queries(const at::Tensor& x) const {
    return query_from_ == 0 ? x : x.narrow(1, query_from_, x.size(1) - query_from_);
  }
  // q: B × Tq × Hl·hd, the last Tq of the T positions of k, v: B × T × KVl·hd (this rank's heads, before
  // rotary) → B × Tq × Hl·hd.
  at::Tensor operator()(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) const;

 private:
  AttentionShape s_;
  at::Tensor bias_;      // B × 1 × T × S additive (0 / lowest), undefined when nothing is masked
  at::Tensor cos_, sin_;  // B × 1 × T × (rotary table width)
  KVCache* cache_ = nullptr;
  int64_t layer_ = 0;
  int64_t query_from_ = 0;
};

}  // namespace lopa
