// Architecture: what distinguishes one model family from another (decoders and bidirectional encoders),
// in one place — its config.json keys, the table of its Hugging Face tensors (how each maps onto the
// shared blocks and splits over tensor-parallel ranks), its block's forward composed from the shared
// blocks, its position ids and its pooling. One file per family in runtime/model/arch/, one line in
// runtime/model/registry.cpp; nothing else asks which family it is.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/model/activation.h"
#include "runtime/model/model_config.h"
#include "runtime/model/norm.h"
#include "runtime/model/projection.h"

namespace lopa {

class Attention;

// Which vector stands for a whole sequence (lopa embed, encoders of prompt generators): the first
// token's hidden state (BERT/RoBERTa's [CLS]/<s>), the masked mean of the real tokens' states,
// L2-normalised (CodeSage), or the last real token's state (a causal decoder). None: no rule.
enum class Pooling { None, First, Mean, Last };
const char* pooling_name(Pooling p);  // "none", "first", "mean", "last"

// Where a projection's weight lives and how it splits: the unit of the split dimension (outputs of a
// column-parallel projection, inputs of a row-parallel one).
enum class Shard { QueryHeads, KVHeads, Features };

struct ProjectionSpec {
  Role role;
  bool row_parallel = false;
  Shard shard = Shard::Features;
  int64_t in = 0, out = 0;     // global features
  std::string module;          // HF module whose weight holds it, e.g. "model.layers.0.self_attn.qkv_proj"
  bool has_bias = false;       // module.bias exists (same row map as the weight)
  bool transposed = false;     // stored [in, out] (GPT-2's Conv1D)
  std::vector<int64_t> rows;   // output feature i is row rows[i] of the module's output; empty: offset + i
  int64_t row_offset = 0;      // with empty rows: first module row (fused modules: q | k | v)
};

struct LayerSpec {
  std::vector<std::string> norms;  // HF module names of the block's norms, in the order block() uses them
  std::vector<ProjectionSpec> projections;
};

struct ModelSpec {
  NormKind norm = NormKind::RMS;
  double norm_eps = 1e-6;
  std::string embed;           // HF module of the token embedding (V × d)
  std::string position_embed;  // learned absolute positions (P × d), "" without
  std::string final_norm;      // "" without (post-norm encoders end on their last block's norm)
  std::string lm_head;         // "" when tied to the embedding
  bool lm_head_bias = false;
  bool attention_fp32 = false;  // q·kᵀ in float32 even for low-precision weights (CodeGen, Phi)
  std::vector<LayerSpec> layers;
  // Key prefixes a checkpoint may lack or add (GPT-2 on the hub stores "h.0…" for "transformer.h.0…";
  // roberta-base stores "roberta.embeddings…" where RobertaModel names "embeddings…").
  std::vector<std::string> optional_prefixes;

  // Encoders (all defaults keep a decoder as it was).
  bool causal = true;               // false: bidirectional attention; no KV cache, no causal-LM loss
  bool has_lm_head = true;          // false: a base model (RobertaModel, BertModel, CodeSageModel): no vocabulary head
  std::string token_type_embed;     // token-type embedding (token_types × d), "" without; every input is type 0
  int64_t token_types = 0;
  std::string embed_norm;           // norm of the summed embeddings before the first block (BERT, RoBERTa), "" without
  // A masked-LM head's transform before the vocabulary projection: dense (d × d with bias) → head_act →
  // head_norm (RoBERTa lm_head.dense / layer_norm, BERT cls.predictions.transform); "" without.
  std::string head_dense, head_norm;
  Activation head_act = Activation::GeluErf;
  std::string output_bias;          // full name of the vocabulary bias kept beside the head (lm_head.bias), "" without
};

// One stored tensor of a checkpoint of this architecture.
struct TensorSpec {
  enum Kind { Matrix, Bias, NormWeight, NormBias, Embedding };
  std::string name;
  std::vector<int64_t> shape;
  Kind kind = Matrix;
};

// One transformer block's weights on this rank, as the architecture's block() reads them.
struct Block {
  std::vector<Norm> norms;
  Projection proj[kNumRoles];
  const Projection& operator[](Role r) const { return proj[static_cast<int>(r)]; }
  Projection& operator[](Role r) { return proj[static_cast<int>(r)]; }
};

class Architecture {
 public:
  virtual ~Architecture() = default;
  const ModelConfig& config() const { return cfg_; }
  // The tensor table and the blocks' layout (names as transformers saves them).
  virtual ModelSpec spec() const = 0;
  // One block: x (B × T × d, the residual stream) → the next residual stream.
  virtual at::Tensor block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp) const = 0;
  // PEFT module names that LoRA can target, e.g. {"q_proj", "v_proj", ...} or {"c_attn", ...}.
  virtual std::vector<std::string> lora_modules() const;
  // The modules LoRA targets for this family with lora-targets "auto" (those the LoPA paper's code and PEFT
  // configs use: Llama q/v, GPT-2 c_attn, CodeGen qkv_proj, phi-2 q,k,v,dense,fc1,fc2).
  virtual std::vector<std::string> default_lora_modules() const = 0;
  // Position ids as transformers' forward makes them when none are given, for input ids (B × T, int64) and
  // for inputs_embeds of B × T: 0 … T-1 unless the family counts otherwise (RoBERTa).
  virtual at::Tensor position_ids(const at::Tensor& ids) const;
  virtual at::Tensor embeds_position_ids(int64_t B, int64_t T, c10::Device device) const;
  // The family's pooling: the last real token for a causal decoder; a bidirectional encoder names its
  // own or has none (Pooling::None: callers must choose one).
  virtual Pooling pooling() const;

 protected:
  ModelConfig cfg_;
};

// Spec builders: a column-parallel projection (outputs split by `shard`; in a fused module, its rows
// start at row_offset) and a row-parallel one (inputs split by `shard`).
ProjectionSpec column_parallel(Role role, Shard shard, int64_t in, int64_t out, std::string module, bool bias,
                               int64_t row_offset = 0);
ProjectionSpec row_parallel(Role role, Shard shard, int64_t in, int64_t out, std::string module, bool bias);

// The GPT-J-style parallel block (CodeGen, Phi): one norm, x + o(attn(ln(x))) + fc_out(act(fc_in(ln(x)))),
// summed in that order as transformers does.
at::Tensor parallel_block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp, Activation act);

// Every stored tensor with its shape, derived from spec() (fused modules appear once).
std::vector<TensorSpec> tensor_table(const ModelSpec& spec, const ModelConfig& c);
int64_t num_parameters(const std::vector<TensorSpec>& table);

// --- registry (runtime/model/registry.cpp)
// config.json text → its architecture; throws "SOURCE: unsupported architecture 'X' (supported: …)".
std::unique_ptr<Architecture> make_architecture(const std::string& json_text, const std::string& source);
std::unique_ptr<Architecture> load_architecture(const std::string& config_path);
std::vector<std::string> supported_architectures();

}  // namespace lopa
