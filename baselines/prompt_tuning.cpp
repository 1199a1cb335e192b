#include "baselines/prompt_tuning.h"

#include "lopa/adapter_io.h"
#include "runtime/base/error.h"

namespace lopa {

PromptTuning::PromptTuning(PromptTuningOptions opt) : opt_(std::move(opt)) {
  LOPA_CHECK(opt_.num_tokens > 0 && opt_.model_dim > 0, "pt: num-virtual-tokens and model dim must be positive");
  z_s = make_parameter({opt_.num_tokens, opt_.model_dim}, opt_.init_std);
}

at::Tensor PromptTuning::soft_prompt(const at::Tensor&, int64_t batch) {
  return z_s.unsqueeze(0).expand({batch, opt_.num_tokens, opt_.model_dim});
}

void PromptTuning::set_prompt(const at::Tensor& z, const std::string& init_text) {
  LOPA_CHECK(z.sizes() == z_s.sizes(), "pt: init prompt must be ", shape_str(z_s.sizes()), ", got ", shape_str(z.sizes()));
  at::NoGradGuard g;
  z_s.copy_(z);
  opt_.init_text = init_text;
}

at::Tensor prompt_from_text_embeddings(const at::Tensor& e, int64_t m) {
  LOPA_CHECK(e.dim() == 2 && e.size(0) > 0, "prompt init text: needs at least one token");
  auto idx = at::arange(m, at::kLong).remainder(e.size(0)).to(e.device());
  return e.index_select(0, idx).to(at::kFloat).contiguous();
}

void PromptTuning::save(const std::string& dir) const {
  nlohmann::json cfg = {{"peft_type", "PROMPT_TUNING"},
                        {"task_type", "CAUSAL_LM"},
                        {"num_virtual_tokens", opt_.num_tokens},
                        {"token_dim", opt_.model_dim},
                        {"num_transformer_submodules", 1},
                        {"prompt_tuning_init", opt_.init_text.empty() ? "RANDOM" : "TEXT"},
                        {"prompt_tuning_init_text", opt_.init_text.empty() ? nlohmann::json(nullptr)
                                                                           : nlohmann::json(opt_.init_text)},
                        {"base_model_name_or_path", opt_.base_model},
                        {"inference_mode", true}};
  write_adapter(dir, {{"prompt_embeddings", z_s}}, cfg, "adapter_config.json", "adapter_model.safetensors");
}

void PromptTuning::load(const std::string& dir) {
  auto cfg = read_adapter_config(dir, "adapter_config.json");
  LOPA_CHECK(cfg.value("peft_type", std::string()) == "PROMPT_TUNING", dir,
             "/adapter_config.json: peft_type is not PROMPT_TUNING");
  assign_parameters(parameters(), read_adapter_tensors(dir, "adapter_model.safetensors"),
                    dir + "/adapter_model.safetensors");
}

}  // namespace lopa
