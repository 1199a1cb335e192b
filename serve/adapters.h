// The adapters one `lopa serve` process holds: trained runs (PT, IDPG, LoPA, LoRA, prefix tuning)
// registered by name and loaded onto the one frozen FM, and what each adds to a request: a soft prompt
// (PT: the same for every request; LoPA / IDPG: computed per request by the run's encoder from the
// prompt, as `lopa generate --adapter` does), a KV prefix (prefix tuning) or a row of the LoRA bank.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "baselines/lora.h"
#include "experiments/tasks/train_config.h"
#include "lopa/method.h"

namespace lopa {
class CausalLM;
class Tokenizer;
}  // namespace lopa

namespace lopa::serve {

struct ServedAdapter {
  std::string name, run_dir;
  TrainConfig cfg;                          // the run's config.ini (method, model, encoder, pooling)
  std::unique_ptr<Method> method;           // loaded, evaluation mode; LoRA: not attached (the bank serves it)
  std::unique_ptr<CausalLM> encoder;        // LoPA / IDPG with their own encoder; null: the FM encodes
  std::unique_ptr<Tokenizer> encoder_tok;   // that encoder's tokenizer
  at::Tensor fixed_soft_prompt;             // PT: 1 × m × d float32
  std::vector<at::Tensor> prefix_k, prefix_v;  // prefix tuning: per layer 1 × kv × P × hd
  int64_t lora = -1;                        // LoRA: its LoraBank run index
  int64_t prefix_length() const { return prefix_k.empty() ? 0 : prefix_k[0].size(2); }
  ~ServedAdapter();
  ServedAdapter();
};

class AdapterSet {
 public:
  // `tok` is the FM's tokenizer (prompt text for encoders); both must outlive the set.
  AdapterSet(CausalLM& fm, const Tokenizer& tok);
  ~AdapterSet();

  // Loads RUN_DIR as adapter `name` (a name of letters, digits, '-', '_', '.', ':' or '/', not yet taken).
  // Throws naming the run for a method that cannot share the FM (full fine-tuning) or an adapter whose
  // shapes do not fit the FM.
  const ServedAdapter& add(const std::string& name, const std::string& run_dir);
  const ServedAdapter* find(const std::string& name) const;
  const std::vector<std::unique_ptr<ServedAdapter>>& all() const { return adapters_; }
  LoraBank& lora_bank() { return bank_; }

  // The soft prompt (1 × m × d float32) `a` prepends to a request of `prompt_ids` (FM tokens), undefined
  // for LoRA and prefix runs. LoPA / IDPG run their encoder here: call it where no LoRA row is installed
  // on the FM (the engine's thread, between steps).
  at::Tensor soft_prompt(const ServedAdapter& a, const std::vector<int64_t>& prompt_ids) const;

 private:
  CausalLM& fm_;
  const Tokenizer& tok_;
  LoraBank bank_;
  std::vector<std::unique_ptr<ServedAdapter>> adapters_;
};

}  // namespace lopa::serve
