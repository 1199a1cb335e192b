// CausalLM: the one decoder interface the trainer, evaluation, generation, methods and benchmarks
// use, over this rank's tensor-parallel shard of any supported architecture (runtime/model/arch/).
// Attention heads and MLP features are split across the tp ranks of the process group (Megatron
// column-parallel q/k/v/up, row-parallel o/down), the embedding and LM head by vocabulary range.
// With tp = 1 it is exactly the plain single-device model, with Hugging Face's numerics.
// The same class holds a bidirectional encoder's weights (BERT, RoBERTa, CodeSage: the spec says so);
// runtime/model/encoder.h is the interface for those (hidden states, masked-LM logits, pooling).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/distributed/process_group.h"
#include "runtime/model/architecture.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/model_config.h"
#include "runtime/model/projection.h"

namespace lopa {

// Which dimension of a stored tensor is split across the tp ranks.
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

struct NamedParameter {
  std::string name;   // unique: the HF tensor name, with ":<role>" for one part of a fused module
  at::Tensor tensor;  // this rank's shard
  ShardInfo shard;
};

class CausalLM {
 public:
  // Reads DIR/config.json and this rank's shard of every weight (tp = pg.tp_size, rank pg.tp_rank),
  // converted to `dtype` on pg.device. Weights are frozen (requires_grad = false).
  static CausalLM load(const std::string& dir, const ProcessGroup& pg, at::ScalarType dtype = at::kFloat);

  const ModelConfig& config() const { return arch_->config(); }
  const Architecture& architecture() const { return *arch_; }
  bool causal() const { return spec_.causal; }  // false: a bidirectional encoder
  const ProcessGroup& process_group() const { return pg_; }
  at::ScalarType dtype() const { return dtype_; }
  c10::Device device() const { return pg_.device; }
  int64_t hidden_size() const { return config().hidden_size; }
  int64_t vocab_size() const { return config().vocab_size; }
  int64_t num_layers() const { return config().num_hidden_layers; }
  int64_t head_dim() const { return config().head_dim; }
  int64_t num_heads() const { return config().num_attention_heads; }
  int64_t num_kv_heads() const { return config().num_key_value_heads; }
  int64_t num_heads_local() const { return heads_local_; }
  int64_t num_kv_heads_local() const { return kv_heads_local_; }
  int64_t kv_head_begin() const { return kv_head_begin_; }  // first KV head held here
  int64_t vocab_begin() const { return vocab_begin_; }    // this rank's vocabulary range [begin, begin + shard)
  int64_t vocab_shard_size() const { return vocab_shard_; }  // ceil(V / tp): padded rows past V are zero
  int64_t num_parameters() const { return num_parameters_; }  // global, tied embeddings counted once

  // ids B × T (int64) → embeddings B × T × d (vocab-parallel, all-reduced).
  at::Tensor embed(const at::Tensor& ids) const;
  // The input embedding table shard (vocab_shard × d): soft prompt initialisation from vocabulary.
  const at::Tensor& embedding_weight() const { return embed_; }

  // inputs_embeds B × T × d, attention_mask B × T (1 real, 0 pad; undefined = all real) → final-norm
  // hidden states B × T × d. Causal (bidirectional for an encoder) + padding masks; positions from the mask's cumulative sum (left
  // padding works) unless position_ids (B × T) are given. With a cache, new keys/values are appended
  // and the mask may cover cached + new positions (B × (past + T), HF convention; or prefix + past + T)
  // or the new positions only (B × T). keep_from > 0: only positions keep_from … T-1 are returned
  // (B × (T - keep_from) × d), their states exactly as in the whole output; the last block computes its
  // queries, MLP and residual for those only (about 1/L of the work saved when only a loss's tail is read).
  at::Tensor forward(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask, KVCache* cache = nullptr,
                     const at::Tensor& position_ids = {}, int64_t keep_from = 0) const;

  // hidden … × d → full-vocabulary logits … × V (gathered over tp); a masked LM's head transform
  // (dense → act → norm) first. Throws for a base encoder, which has no vocabulary head.
  at::Tensor lm_logits(const at::Tensor& hidden) const;
  // Mean causal-LM loss (HF: logits[:, :-1] predict labels[:, 1:], -100 ignored). The LM head is applied
  // only at the rows whose shifted label is kept, and the loss is vocab-parallel (no full logits
  // under tp). 0-d float tensor; NaN-free 0 when nothing is kept.
  at::Tensor lm_loss(const at::Tensor& hidden, const at::Tensor& labels) const;

  // A projection by role (LoRA, benchmarks); throws naming the roles this architecture has.
  Projection& projection(int64_t layer, Role role);
  const Projection& projection(int64_t layer, Role role) const;
  Projection& projection(int64_t layer, const std::string& role);  // "q", "q_proj", "fc_in", …
  const Projection& projection(int64_t layer, const std::string& role) const;
  // The projections held by the HF module `name` of a layer ("q_proj", "c_attn", "qkv_proj", …, the
  // module's last path component): one, or several for a fused module. Throws naming the layer's
  // modules when none matches.
  std::vector<Projection*> module_projections(int64_t layer, const std::string& name);
  // The layer's HF module names (last path components) in block order, each once.
  std::vector<std::string> module_names() const;

  // Every parameter with a unique name and its shard (tied LM head listed once, as the embedding).
  std::vector<NamedParameter> named_parameters() const;
  // Full fine-tuning: sets requires_grad on every weight (and back).
  void set_trainable(bool trainable);
  // Writes an HF checkpoint (config.json + model.safetensors, HF names and layouts: fused modules and
  // Conv1D restored) of the current weights, gathering the shards over tp; rank 0 of the tp group writes.
  void save_pretrained(const std::string& dir) const;
  // Overwrites this rank's shards in place from an HF checkpoint of the same architecture and shape.
  void load_weights(const std::string& dir);

  CausalLM(CausalLM&&) = default;
  CausalLM& operator=(CausalLM&&) = default;

 private:
  CausalLM() = default;
  at::Tensor logits_shard(const at::Tensor& hidden) const;  // … × vocab_shard (padded columns at -inf)
  void read_weights(const class Checkpoint& ck, bool in_place);

  std::shared_ptr<const Architecture> arch_;
  ModelSpec spec_;
  std::string dir_;  // the checkpoint it was loaded from
  ProcessGroup pg_;
  at::ScalarType dtype_ = at::kFloat;
  int64_t heads_local_ = 0, kv_heads_local_ = 0, vocab_begin_ = 0, vocab_shard_ = 0, num_parameters_ = 0;
  int64_t head_begin_ = 0, kv_head_begin_ = 0;
  at::Tensor embed_, pos_embed_, lm_head_, lm_head_bias_;  // lm_head_ aliases embed_ when tied
  at::Tensor type_embed_;                                  // encoders: token types × d (row 0 used)
  Norm final_norm_, embed_norm_, head_norm_;               // weight undefined when the spec has none
  at::Tensor head_dense_w_, head_dense_b_;                 // masked-LM head transform, replicated
  at::Tensor inv_freq_;        // rotary_dim/2, float32 (rope scaling applied); undefined without rotary
  at::Tensor vocab_pad_bias_;  // vocab_shard, 0 or -inf at padded rows; undefined when none
  std::vector<Block> blocks_;
};

}  // namespace lopa
