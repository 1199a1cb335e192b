#include "experiments/eval/adapter_generation.h"

#include <filesystem>

#include "experiments/eval/batching.h"
#include "experiments/eval/method_factory.h"
#include "experiments/eval/prompt_method.h"
#include "runtime/base/error.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

AdapterRun::AdapterRun() = default;
AdapterRun::~AdapterRun() = default;
AdapterRun::AdapterRun(AdapterRun&&) noexcept = default;

TrainConfig read_run_config(const std::string& run_dir) {
  const auto ini = run_dir + "/config.ini";
  LOPA_CHECK(std::filesystem::exists(ini), "--adapter ", run_dir, ": no config.ini (not a lopa run directory)");
  LOPA_CHECK(std::filesystem::is_directory(run_dir + "/adapter"), "--adapter ", run_dir,
             ": no adapter/ (the run has not saved an adapter yet)");
  return TrainConfig::from_map(TrainConfig::read_ini(ini));
}

std::string run_encoder_dir(const std::string& run_dir, const TrainConfig& cfg) {
  const bool uses_encoder = cfg.method == "lopa" || cfg.method == "idpg";
  if (!uses_encoder || !cfg.train_encoder) return cfg.encoder;
  const auto dir = run_dir + "/adapter/encoder";
  LOPA_CHECK(std::filesystem::exists(dir + "/config.json"), run_dir,
             ": the run trained its encoder (train-encoder = true) but adapter/encoder/config.json is missing");
  return dir;
}

AdapterRun load_adapter_run(const std::string& run_dir, CausalLM& fm, const Tokenizer& tok) {
  AdapterRun run;
  run.cfg = read_run_config(run_dir);
  run.cfg.encoder = run_encoder_dir(run_dir, run.cfg);
  const bool uses_encoder = run.cfg.method == "lopa" || run.cfg.method == "idpg";
  if (uses_encoder && !run.cfg.encoder.empty()) {
    run.encoder = std::make_unique<CausalLM>(CausalLM::load(run.cfg.encoder, fm.process_group(), fm.dtype()));
    run.encoder_tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(run.cfg.encoder));
  }
  const int64_t H = run.encoder ? run.encoder->hidden_size() : fm.hidden_size();
  // Built as `lopa eval` builds it; the tokenizer only matters for prompt-init text, which the loaded
  // adapter overwrites.
  run.method = make_method(run.cfg, fm, tok, H);
  run.method->attach(fm);
  run.method->load(run_dir + "/adapter");
  run.method->set_training(false);
  return run;
}

std::vector<std::vector<int64_t>> generate_with_adapter(AdapterRun& run, const CausalLM& fm,
                                                        const std::vector<std::vector<int64_t>>& prompts,
                                                        const std::vector<std::string>& texts,
                                                        const GenerationConfig& gc) {
  at::NoGradGuard no_grad;
  auto& method = *run.method;
  const int64_t B = static_cast<int64_t>(prompts.size());
  at::Tensor enc;
  if (method.needs_encoder()) {
    LOPA_CHECK(texts.size() == prompts.size(), "generate_with_adapter: ", texts.size(), " texts for ", B, " prompts");
    std::vector<TrainItem> items(B);
    std::vector<int64_t> idx(B);
    for (int64_t b = 0; b < B; ++b) {
      items[b].prompt = prompts[b];
      items[b].encoder_input =
          run.encoder_tok ? encoder_input_ids(*run.encoder_tok, texts[b], run.cfg.encoder_max_length) : prompts[b];
      idx[b] = b;
    }
    const CausalLM& encoder = run.encoder ? *run.encoder : fm;
    const Tokenizer* et = run.encoder_tok.get();
    const int64_t pad = et ? et->pad_id().value_or(et->eos_id().value_or(0)) : 0;  // masked out: any id
    enc = encode_instances(encoder, items, idx, run.cfg.encoder_pooling, B, pad);
  }
  return generate_with_method(method, fm, prompts, enc, gc);
}

std::vector<std::vector<int64_t>> generate_with_method(Method& method, const CausalLM& fm,
                                                       const std::vector<std::vector<int64_t>>& prompts,
                                                       const at::Tensor& enc, const GenerationConfig& gc) {
  at::NoGradGuard no_grad;
  const int64_t B = static_cast<int64_t>(prompts.size());
  const auto z = method.soft_prompt(method.needs_encoder() ? enc : at::Tensor(), B);  // undefined: LoRA, prefix, FFT
  KVPrefix prefix;
  if (method.cache_prefix_length() > 0) {
    // The method seeds a cache; generate() takes the per-layer prefix tensors it holds.
    auto seeded = KVCache::for_model(fm, 1, 1);
    method.seed_cache(seeded, fm, 1);
    for (int64_t l = 0; l < fm.num_layers(); ++l) {
      prefix.keys.push_back(seeded.keys(l));
      prefix.values.push_back(seeded.values(l));
    }
  }
  return generate(fm, prompts, gc, z, method.cache_prefix_length() > 0 ? &prefix : nullptr);
}

}  // namespace lopa
