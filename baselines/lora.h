// LoRA (Hu et al., 2021): frozen projection W plus a trainable low-rank update, y = W x + (α/r)·B A drop(x),
// with A (r×in) drawn as PEFT does (Kaiming-uniform, a = √5) and B (out×r) zero. Works on the FM's
// tensor-parallel shards: for a column-parallel projection each rank holds the rows of B for its output
// slice (A whole), for a row-parallel one the columns of A for its input slice (B whole); autograd
// regions make every replicated factor's gradient the full one on every rank.
// LoRA adapts HF modules as PEFT does: a fused module (GPT-2's c_attn, CodeGen's qkv_proj, Phi-3's
// qkv_proj) gets one A and one B over its whole output, each of its projections using its rows of B.
// Saved in Hugging Face PEFT's layout: adapter_config.json + adapter_model.safetensors with names
// base_model.model.<module path>.lora_A.weight (r×in) and ….lora_B.weight (module out×r).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lopa/method.h"
#include "runtime/model/linear_adapter.h"

namespace lopa {

struct Projection;

struct LoraOptions {
  int64_t rank = 8;                   // r
  double alpha = 16;                  // scaling α/r
  double dropout = 0.05;
  // Modules by PEFT name ("q_proj", "c_attn", "dense", …) or by role (q, k, v, o, gate, up, down, fc_in,
  // fc_out: the module holding it), "all-linear" (every module), or "auto" (the family's PEFT default).
  std::vector<std::string> targets = {"q", "k", "v"};
  std::string base_model;             // recorded in adapter_config.json
};

// Splits "q,k,v" / "q_proj,v_proj" / "c_attn" / "all-linear" / "auto" into items (syntax only).
std::vector<std::string> parse_lora_targets(const std::string& s);
// The items resolved against a model: its module names (last path components), each once, in block
// order. Throws naming the model's modules and roles for an item that matches none.
std::vector<std::string> resolve_lora_modules(const std::vector<std::string>& targets, CausalLM& fm);

class Lora : public Method {
 public:
  // Creates A and B for every target projection of `fm` (this rank's shards).
  Lora(LoraOptions opt, CausalLM& fm);
  ~Lora() override;

  std::string name() const override { return "lora"; }
  NamedTensors parameters() override;  // local shards, PEFT names
  int64_t num_trainable_parameters() const override { return total_params_; }
  bool server_side_adapter() const override { return true; }
  void attach(CausalLM& fm) override;
  void detach(CausalLM& fm) override;
  void set_training(bool on) override;
  bool is_tp_sharded(const std::string& name) const override;
  void save(const std::string& dir) const override;  // gathers shards over tp; tp rank 0 writes
  void load(const std::string& dir) override;        // reads and keeps this rank's slice
  bool collective_save() const override { return true; }

  // Σ over target modules of r·(in + out): the count for one layer set, for tests.
  static int64_t formula(int64_t r, const std::vector<std::pair<int64_t, int64_t>>& in_out_per_projection);

  struct Module;

  // One adapted projection's factors on this rank (no copies): A (r × in_local), its rows of B
  // (out_local × r) and α/r; what a LoraBank stacks to serve many runs in one batch.
  struct Factors {
    Projection* proj = nullptr;
    at::Tensor A, B;
    double scaling = 1;
  };
  std::vector<Factors> factors() const;

 private:
  LoraOptions opt_;
  CausalLM* fm_ = nullptr;
  std::vector<std::string> modules_names_;  // the resolved target modules (PEFT target_modules)
  bool fan_in_fan_out_ = false;
  std::vector<std::shared_ptr<Module>> modules_;
  int64_t total_params_ = 0;
};

// Mixed-adapter LoRA for serving (lopa serve): the factors of several trained LoRA runs on one frozen FM,
// each row of a batch using its own run or none. Per projection, the runs' A and B are stacked (padded
// to the largest rank with zeros) and gathered by row, and the update is one batched matmul over the
// batch (Punica's SGMV idea as a gathered bmm) instead of one adapter attached for the whole batch.
// Inference only (no dropout, no gradient); the runs' Lora objects must outlive the bank.
class LoraBank {
 public:
  explicit LoraBank(CausalLM& fm);
  ~LoraBank();
  LoraBank(const LoraBank&) = delete;
  LoraBank& operator=(const LoraBank&) = delete;

  // Registers a loaded (not attached) run; returns its index for set_rows.
  int64_t add(const Lora& lora);
  int64_t size() const { return num_runs_; }
  // Row b of the following forwards uses run rows[b] (-1: the plain FM). Installs the bank's adapters
  // on every projection some registered run adapts, or removes them when no row uses a run.
  void set_rows(const std::vector<int64_t>& rows);
  // Removes the bank's adapters from the FM.
  void clear();

  struct Slot;

 private:
  CausalLM* fm_ = nullptr;
  int64_t num_runs_ = 0;
  std::vector<std::shared_ptr<Slot>> slots_;  // one per adapted projection
  std::vector<int64_t> rows_;
  bool installed_ = false;
};

}  // namespace lopa
