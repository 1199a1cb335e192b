// CausalLM: the Llama-family decoder (HF LlamaForCausalLM numerics) over this rank's tensor-parallel
// shard of the weights. Attention heads and MLP columns are split across the tp ranks of the process
// group (Megatron column-parallel q/k/v/gate/up, row-parallel o/down), the embedding and LM head by
// vocabulary range. With tp = 1 it is exactly the plain single-device model.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/kv_cache.h"
#include "runtime/linear_adapter.h"
#include "runtime/model_config.h"
#include "runtime/process_group.h"

namespace lopa {

// How a weight is split across the tp ranks.
enum class Split {
  Replicated,  // every rank holds the whole tensor (norms, row-parallel biases)
  Rows,        // dim 0 split: column-parallel weights/biases, vocab-parallel embedding / LM head
  Cols,        // dim 1 split: row-parallel weights
};

// One rank's part of a parameter: global shape and the [begin, end) range along the split dim.
struct ShardInfo {
  Split split = Split::Replicated;
  std::vector<int64_t> global_shape;
  int64_t begin = 0, end = 0;  // in the split dim (0, size for Replicated); end may exceed the
                               // global size when the range is padded (vocab not divisible by tp)
};

// A linear layer y = x Wᵀ + b of the FM, holding this rank's shard and an optional adapter.
struct Projection {
  std::string name;         // HF module name, e.g. "model.layers.3.self_attn.q_proj"
  Split split = Split::Rows;  // Rows: column-parallel (output features split), Cols: row-parallel
  at::Tensor weight;        // out_local × in_local
  at::Tensor bias;          // out_local (column-parallel) or out (row-parallel, added after the reduction); may be undefined
  int64_t in_features = 0, out_features = 0;  // global
  int64_t in_local = 0, out_local = 0;
  int64_t shard_begin = 0;  // first global output row (column-parallel) or input column (row-parallel) held here
  std::shared_ptr<LinearAdapter> adapter;  // delta(x_local) added to the local output before any reduction

  at::Tensor forward(const at::Tensor& x, Communicator& tp) const;
};

struct NamedParameter {
  std::string name;  // HF name ("model.layers.0.self_attn.q_proj.weight"); Phi3 is kept split (q/k/v, gate/up)
  at::Tensor tensor;  // this rank's shard
  ShardInfo shard;
};

class CausalLM {
 public:
  // Reads DIR/config.json and this rank's shard of every weight (tp = pg.tp_size, rank pg.tp_rank),
  // converted to `dtype` on pg.device. Weights are frozen (requires_grad = false).
  static CausalLM load(const std::string& dir, const ProcessGroup& pg, at::ScalarType dtype = at::kFloat);

  const LlamaConfig& config() const { return cfg_; }
  const ProcessGroup& process_group() const { return pg_; }
  at::ScalarType dtype() const { return dtype_; }
  c10::Device device() const { return pg_.device; }
  int64_t hidden_size() const { return cfg_.hidden_size; }
  int64_t vocab_size() const { return cfg_.vocab_size; }
  int64_t num_layers() const { return cfg_.num_hidden_layers; }
  int64_t head_dim() const { return cfg_.head_dim; }
  int64_t num_heads_local() const { return heads_local_; }
  int64_t num_kv_heads_local() const { return kv_heads_local_; }
  int64_t vocab_begin() const { return vocab_begin_; }    // this rank's vocabulary range [begin, begin + shard)
  int64_t vocab_shard_size() const { return vocab_shard_; }  // ceil(V / tp): padded rows past V are zero
  int64_t num_parameters() const { return num_parameters_; }  // global, tied embeddings counted once

  // ids B × T (int64) → embeddings B × T × d (vocab-parallel, all-reduced).
  at::Tensor embed(const at::Tensor& ids) const;
  // The input embedding table shard (vocab_shard × d): soft prompt initialisation from vocabulary.
  const at::Tensor& embedding_weight() const { return embed_; }

  // inputs_embeds B × T × d, attention_mask B × T (1 real, 0 pad; undefined = all real) → final-norm
  // hidden states B × T × d. Causal + padding masks; positions from the mask's cumulative sum (left
  // padding works) unless position_ids (B × T) are given. With a cache, new keys/values are appended
  // and the mask may cover cached + new positions (B × (past + T), HF convention; or prefix + past + T)
  // or the new positions only (B × T).
  at::Tensor forward(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask, KVCache* cache = nullptr,
                     const at::Tensor& position_ids = {}) const;

  // hidden … × d → full-vocabulary logits … × V (gathered over tp).
  at::Tensor lm_logits(const at::Tensor& hidden) const;
  // Mean causal-LM loss (HF: logits[:, :-1] predict labels[:, 1:], -100 ignored). The LM head is applied
  // only at the rows whose shifted label is kept, and the loss is vocab-parallel (no full logits
  // under tp). 0-d float tensor; NaN-free 0 when nothing is kept.
  at::Tensor lm_loss(const at::Tensor& hidden, const at::Tensor& labels) const;

  // LoRA hook: name is one of q_proj k_proj v_proj o_proj gate_proj up_proj down_proj.
  Projection& projection(int64_t layer, const std::string& name);
  const Projection& projection(int64_t layer, const std::string& name) const;

  // Every parameter with its HF name and shard (tied LM head listed once, as the embedding).
  std::vector<NamedParameter> named_parameters() const;
  // Full fine-tuning: sets requires_grad on every weight (and back).
  void set_trainable(bool trainable);
  // Writes an HF checkpoint (config.json + model.safetensors) of the current weights, gathering the
  // shards over tp; rank 0 of the tp group writes (Phi3 fused names restored).
  void save_pretrained(const std::string& dir) const;

  CausalLM(CausalLM&&) = default;
  CausalLM& operator=(CausalLM&&) = default;

 private:
  CausalLM() = default;
  struct Layer {
    at::Tensor input_norm, post_norm;  // d, replicated
    Projection q, k, v, o, gate, up, down;
  };
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w) const;
  at::Tensor logits_shard(const at::Tensor& hidden) const;  // … × vocab_shard (padded columns at -inf)

  LlamaConfig cfg_;
  std::string dir_;  // the checkpoint it was loaded from
  ProcessGroup pg_;
  at::ScalarType dtype_ = at::kFloat;
  int64_t heads_local_ = 0, kv_heads_local_ = 0, vocab_begin_ = 0, vocab_shard_ = 0, num_parameters_ = 0;
  int64_t head_begin_ = 0, kv_head_begin_ = 0;
  at::Tensor embed_, lm_head_, final_norm_;  // lm_head_ aliases embed_ when tied
  at::Tensor inv_freq_;                      // head_dim/2, float32 (rope scaling applied)
  at::Tensor vocab_pad_bias_;                // vocab_shard, 0 or -inf at padded rows; undefined when none
  std::vector<Layer> layers_;
};

}  // namespace lopa
