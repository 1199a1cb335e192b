// Method: the trainable part of one run (LoPA, prompt tuning, IDPG, LoRA, prefix tuning, full
// fine-tuning) behind one interface, so the trainer, evaluator and generator never ask which it is.
// A method either produces a soft prompt Z (B×m×d) to prepend to the FM's input embeddings, or
// changes the FM itself while attached (LoRA adapters, KV prefixes, trainable FM weights).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/base/linear.h"       // lopa::linear, used by every method
#include "runtime/io/safetensors.h"  // NamedTensors

namespace lopa {

class CausalLM;
class KVCache;

class Method {
 public:
  virtual ~Method() = default;

  virtual std::string name() const = 0;  // "lopa", "pt", "idpg", "lora", "prefix", "fft"

  // The trainable tensors (requires_grad = true), with stable names used in checkpoints.
  virtual NamedTensors parameters() = 0;
  // Trainable parameters of the whole method (encoder excluded, FM shards counted over all tp ranks).
  virtual int64_t num_trainable_parameters() const = 0;

  // True when soft_prompt() needs the instance embedding of a (frozen) encoder.
  virtual bool needs_encoder() const { return false; }
  // True when serving needs task-specific weights inside the FM (LoRA, prefix, FFT).
  virtual bool server_side_adapter() const { return false; }
  // Number of soft-prompt positions prepended to the input (0 for methods without a soft prompt).
  virtual int64_t prompt_length() const { return 0; }

  // Soft prompt for a batch: encoder_embedding is B×H (undefined when !needs_encoder()); returns
  // B×prompt_length()×d in fp32, or an undefined tensor when the method has no soft prompt.
  virtual at::Tensor soft_prompt(const at::Tensor& encoder_embedding, int64_t batch) { return at::Tensor(); }

  // Install into / remove from the FM (LoRA adapters, trainable FM weights). Soft-prompt methods do nothing.
  virtual void attach(CausalLM& fm) {}
  virtual void detach(CausalLM& fm) {}
  // Prefix tuning: seed `cache` with this method's per-layer K/V prefixes for a batch of B.
  virtual void seed_cache(KVCache& cache, const CausalLM& fm, int64_t batch) {}
  // Number of KV positions seed_cache adds before the input (prefix tuning), 0 otherwise.
  virtual int64_t cache_prefix_length() const { return 0; }

  // True for a parameter that each tensor-parallel rank holds only a slice of (LoRA factors of split
  // projections, FM shards under full fine-tuning): its norm is summed over the tp group.
  virtual bool is_tp_sharded(const std::string& name) const { return false; }

  // Dropout on or off.
  virtual void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }

  // Trained parameters to/from a directory (adapter/ of a run): safetensors + JSON config; LoRA and
  // prompt tuning in Hugging Face PEFT's layout. Rank 0 writes; every rank may read.
  virtual void save(const std::string& dir) const = 0;
  // True when save() is collective over the tp group (gathers shards; tp rank 0 writes), so every rank
  // of one tp group must call it; otherwise one rank alone calls it.
  virtual bool collective_save() const { return false; }
  virtual void load(const std::string& dir) = 0;

  // Moves every parameter to `device` (keeps them leaf tensors that require grad).
  virtual void to(c10::Device device);

 protected:
  bool training_ = true;
};

// ---- small helpers shared by the methods ----

// A trainable fp32 leaf tensor of `sizes`, drawn from N(0, std) (std = 0 gives zeros).
at::Tensor make_parameter(at::IntArrayRef sizes, double std);
// A trainable fp32 bias of `out` entries drawn from U(-1/√fan_in, 1/√fan_in): torch.nn.Linear's default,
// which the official LoPA and IDPG code keeps for the first (dense) layer of their heads.
at::Tensor make_linear_bias(int64_t out, int64_t fan_in);
// "[2, 3]": shapes in error messages (at::IntArrayRef itself makes lopa::str ambiguous with c10::str).
std::string shape_str(at::IntArrayRef sizes);
// Sum of numel over `params`.
int64_t count_elements(const NamedTensors& params);
// Copies `loaded[name]` into each parameter of `params` in place, checking names and shapes;
// `what` names the source (a file) in errors.
void assign_parameters(const NamedTensors& params, const NamedTensors& loaded, const std::string& what);

}  // namespace lopa
