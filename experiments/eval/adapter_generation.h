// Generation with a trained run's adapter (`lopa generate --adapter RUN_DIR`): the run's method is
// rebuilt from RUN_DIR/config.ini and its adapter/ loaded onto the FM. Soft-prompt methods get their
// prompt per instance (LoPA/IDPG: from the frozen encoder's embedding of that prompt, as in training)
// prepended before KV-cached decoding; prefix tuning seeds the cache; LoRA/FFT weights are attached.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "experiments/tasks/train_config.h"
#include "lopa/method.h"
#include "runtime/model/generation.h"

namespace lopa {

class CausalLM;
class Tokenizer;

struct AdapterRun {
  TrainConfig cfg;
  std::unique_ptr<Tokenizer> encoder_tok;  // null: the encoder reads the FM's tokens
  std::unique_ptr<CausalLM> encoder;       // null: the encoder is the FM itself
  std::unique_ptr<Method> method;          // attached to the FM, evaluation mode
  ~AdapterRun();
  AdapterRun();
  AdapterRun(AdapterRun&&) noexcept;
};

// The run's config.ini (for its model and method), without loading anything.
TrainConfig read_run_config(const std::string& run_dir);

// The encoder a run's adapter goes with: RUN_DIR/adapter/encoder (the trained copy) when the run
// trained it (train-encoder = true), else the config's encoder ("" = the FM).
std::string run_encoder_dir(const std::string& run_dir, const TrainConfig& cfg);

// Rebuilds RUN_DIR's method on `fm` (which must be the run's model: the adapter's shapes are checked
// against it; `tok` is its tokenizer) and loads RUN_DIR/adapter. Collective over fm's process group.
AdapterRun load_adapter_run(const std::string& run_dir, CausalLM& fm, const Tokenizer& tok);

// Generates for each prompt with `method` applied (attached already when it changes the FM):
// encoder_embedding is B×H when method.needs_encoder(), else undefined.
std::vector<std::vector<int64_t>> generate_with_method(Method& method, const CausalLM& fm,
                                                       const std::vector<std::vector<int64_t>>& prompts,
                                                       const at::Tensor& encoder_embedding, const GenerationConfig& gc);

// Generates for each prompt (FM token ids; `texts` are the same prompts as text, which a separate
// encoder tokenizes itself) with the run's method applied.
std::vector<std::vector<int64_t>> generate_with_adapter(AdapterRun& run, const CausalLM& fm,
                                                        const std::vector<std::vector<int64_t>>& prompts,
                                                        const std::vector<std::string>& texts,
                                                        const GenerationConfig& gc);

}  // namespace lopa
