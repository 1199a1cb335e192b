// Prefix tuning (Li & Liang, 2021), as PEFT's PREFIX_TUNING: P trainable key/value positions per layer
// that every query attends to. Without reparameterisation the prefix is one table
// (P × L·2·KV·hd); with it (PEFT's prefix_projection) an embedding P×d goes through
// Linear(d→h) → tanh → Linear(h→L·2·KV·hd). Under tp each rank uses its KV heads' slice.
// Trainable parameters: P·L·2·KV·hd, or P·d + d·h + h + (h+1)·L·2·KV·hd with the projection.
#pragma once

#include "lopa/method.h"

namespace lopa {

class Communicator;

struct PrefixTuningOptions {
  int64_t num_tokens = 0;       // P (num-virtual-tokens)
  bool projection = false;      // PEFT prefix_projection
  int64_t projection_dim = 0;   // h (PEFT encoder_hidden_size; 0: = d)
  double init_std = 1.0;        // embedding init N(0, init_std), as nn.Embedding
  std::string base_model;
};

class PrefixTuning : public Method {
 public:
  PrefixTuning(PrefixTuningOptions opt, const CausalLM& fm);
  std::string name() const override { return "prefix"; }
  NamedTensors parameters() override;
  int64_t num_trainable_parameters() const override;
  bool server_side_adapter() const override { return true; }
  void seed_cache(KVCache& cache, const CausalLM& fm, int64_t batch) override;
  int64_t cache_prefix_length() const override { return opt_.num_tokens; }
  void save(const std::string& dir) const override;
  void load(const std::string& dir) override;

  // Per-layer keys and values (1 × KV_local × P × hd) for this rank, differentiable.
  std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> prefix_kv();

  static int64_t formula(int64_t P, int64_t L, int64_t kv_dim, int64_t d, bool projection, int64_t h);

  at::Tensor embedding;    // P × (L·2·KV·hd), or P × d with the projection
  at::Tensor w1, b1, w2, b2;  // projection: h×d, h, (L·2·KV·hd)×h, L·2·KV·hd

 private:
  PrefixTuningOptions opt_;
  int64_t layers_ = 0, kv_heads_ = 0, head_dim_ = 0, d_ = 0;
  int64_t kv_begin_ = 0, kv_local_ = 0;  // this rank's KV heads
  Communicator* tp_ = nullptr;            // the FM's tensor-parallel group
};

}  // namespace lopa
