#include "serve/adapters.h"

#include <cctype>

#include "experiments/eval/adapter_generation.h"
#include "experiments/eval/batching.h"
#include "experiments/eval/method_factory.h"
#include "experiments/eval/prompt_method.h"
#include "runtime/base/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/kv_cache.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa::serve {

ServedAdapter::ServedAdapter() = default;
ServedAdapter::~ServedAdapter() = default;

AdapterSet::AdapterSet(CausalLM& fm, const Tokenizer& tok) : fm_(fm), tok_(tok), bank_(fm) {}
AdapterSet::~AdapterSet() { bank_.clear(); }

const ServedAdapter& AdapterSet::add(const std::string& name, const std::string& run_dir) {
  LOPA_CHECK(!name.empty(), "--adapter ", run_dir, ": empty adapter name");
  for (char c : name)
    LOPA_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':' || c == '/',
               "--adapter ", name, "=", run_dir, ": the name may hold letters, digits and - _ . : / only");
  LOPA_CHECK(!find(name), "--adapter ", name, "=", run_dir, ": the name ", name, " is registered already");
  auto a = std::make_unique<ServedAdapter>();
  a->name = name;
  a->run_dir = run_dir;
  a->cfg = read_run_config(run_dir);
  a->cfg.encoder = run_encoder_dir(run_dir, a->cfg);
  const auto& m = a->cfg.method;
  LOPA_CHECK(m == "pt" || m == "lopa" || m == "idpg" || m == "lora" || m == "prefix", "--adapter ", run_dir,
             ": method '", m, "' cannot be served beside other tasks (it changes every FM weight); serve it alone "
             "with `lopa generate --adapter`");
  at::NoGradGuard no_grad;
  const bool uses_encoder = m == "lopa" || m == "idpg";
  if (uses_encoder && !a->cfg.encoder.empty()) {
    a->encoder = std::make_unique<CausalLM>(CausalLM::load(a->cfg.encoder, fm_.process_group(), fm_.dtype()));
    a->encoder_tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(a->cfg.encoder));
  }
  const int64_t H = a->encoder ? a->encoder->hidden_size() : fm_.hidden_size();
  // Built as `lopa generate --adapter` builds it (load_adapter_run), but a LoRA run is not attached:
  // the bank applies it to its own rows only.
  a->method = make_method(a->cfg, fm_, tok_, H);
  if (m != "lora") a->method->attach(fm_);
  a->method->load(run_dir + "/adapter");
  a->method->set_training(false);
  if (m == "lora") {
    a->lora = bank_.add(dynamic_cast<const Lora&>(*a->method));
  } else if (m == "pt") {
    a->fixed_soft_prompt = a->method->soft_prompt(at::Tensor(), 1).detach().to(at::kFloat).contiguous();
  } else if (m == "prefix") {
    auto seeded = KVCache::for_model(fm_, 1, 1);
    a->method->seed_cache(seeded, fm_, 1);
    for (int64_t l = 0; l < fm_.num_layers(); ++l) {
      a->prefix_k.push_back(seeded.keys(l).clone());
      a->prefix_v.push_back(seeded.values(l).clone());
    }
  }
  adapters_.push_back(std::move(a));
  return *adapters_.back();
}

const ServedAdapter* AdapterSet::find(const std::string& name) const {
  for (const auto& a : adapters_)
    if (a->name == name) return a.get();
  return nullptr;
}

at::Tensor AdapterSet::soft_prompt(const ServedAdapter& a, const std::vector<int64_t>& prompt_ids) const {
  if (a.fixed_soft_prompt.defined()) return a.fixed_soft_prompt;
  if (!a.method->needs_encoder()) return at::Tensor();
  at::NoGradGuard no_grad;
  // As generate_with_adapter: the encoder reads the prompt (its own tokenization of the prompt's text
  // when it has its own tokenizer).
  std::vector<TrainItem> items(1);
  items[0].prompt = prompt_ids;
  items[0].encoder_input = a.encoder_tok ? encoder_input_ids(*a.encoder_tok, tok_.decode(prompt_ids, true),
                                                             a.cfg.encoder_max_length)
                                         : prompt_ids;
  const CausalLM& encoder = a.encoder ? *a.encoder : fm_;
  const Tokenizer* et = a.encoder_tok.get();
  const int64_t pad = et ? et->pad_id().value_or(et->eos_id().value_or(0)) : 0;
  const auto enc = encode_instances(encoder, items, {0}, a.cfg.encoder_pooling, 1, pad);
  return a.method->soft_prompt(enc, 1).detach().to(at::kFloat).contiguous();
}

}  // namespace lopa::serve
