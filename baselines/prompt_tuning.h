// Prompt tuning (Lester et al., 2021): one task-shared soft prompt Z_S (m×d), the same for every
// instance. m·d trainable parameters. Saved in Hugging Face PEFT's PROMPT_TUNING layout
// (adapter_config.json + adapter_model.safetensors holding "prompt_embeddings").
#pragma once

#include "lopa/method.h"

namespace lopa {

struct PromptTuningOptions {
  int64_t num_tokens = 0;  // m
  int64_t model_dim = 0;   // d
  double init_std = 1.0;   // Z_S ~ N(0, init_std): PEFT's RANDOM init (nn.Embedding)
  std::string init_text;   // recorded in the config when set_prompt() got the text's embeddings
  std::string base_model;  // recorded in the config
};

class PromptTuning : public Method {
 public:
  explicit PromptTuning(PromptTuningOptions opt);
  std::string name() const override { return "pt"; }
  NamedTensors parameters() override { return {{"prompt_embeddings", z_s}}; }
  int64_t num_trainable_parameters() const override { return opt_.num_tokens * opt_.model_dim; }
  int64_t prompt_length() const override { return opt_.num_tokens; }
  at::Tensor soft_prompt(const at::Tensor& encoder_embedding, int64_t batch) override;
  void save(const std::string& dir) const override;
  void load(const std::string& dir) override;

  // Sets Z_S, e.g. to the FM's token embeddings of an init text (repeated/cut to m rows by the caller).
  void set_prompt(const at::Tensor& z, const std::string& init_text);

  at::Tensor z_s;  // m×d

 private:
  PromptTuningOptions opt_;
};

// Rows for an m×d init prompt from the token embeddings E (n×d) of a text: the text's tokens cycled
// until m rows (as PEFT's TEXT init does), or cut to the first m.
at::Tensor prompt_from_text_embeddings(const at::Tensor& token_embeddings, int64_t m);

}  // namespace lopa
