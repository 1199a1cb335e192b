#include "experiments/eval/method_factory.h"

#include "baselines/full_finetune.h"
#include "baselines/idpg.h"
#include "baselines/lora.h"
#include "baselines/prefix_tuning.h"
#include "baselines/prompt_tuning.h"
#include "lopa/lopa_prompt.h"
#include "runtime/base/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

namespace {
// m×d initial Z_S per prompt-init: random (N(0,1), PEFT RANDOM), vocab (embeddings of random tokens, as
// Lester et al.'s sampled-vocabulary init) or text (the init text's token embeddings, cycled to m).
at::Tensor initial_prompt(const TrainConfig& c, CausalLM& fm, const Tokenizer& tok, int64_t m) {
  at::NoGradGuard g;
  if (c.prompt_init == "vocab") {
    auto ids = at::randint(0, fm.vocab_size(), {1, m}, at::kLong).to(fm.device());
    return fm.embed(ids).squeeze(0).to(at::kFloat).cpu();
  }
  if (c.prompt_init == "text") {
    auto v = tok.encode(c.prompt_init_text, false);
    LOPA_CHECK(!v.empty(), "--prompt-init-text: encodes to no tokens");
    auto ids = at::tensor(v, at::kLong).unsqueeze(0).to(fm.device());
    return prompt_from_text_embeddings(fm.embed(ids).squeeze(0).to(at::kFloat).cpu(), m);
  }
  return at::Tensor();
}
}  // namespace

std::unique_ptr<Method> make_method(const TrainConfig& c, CausalLM& fm, const Tokenizer& tok, int64_t H) {
  const int64_t d = fm.hidden_size(), m = c.num_virtual_tokens;
  std::unique_ptr<Method> method;
  if (c.method == "lopa") {
    LopaOptions o;
    o.encoder_dim = H;
    o.head_dim = c.head_dim > 0 ? c.head_dim : H;
    o.num_tokens = m;
    o.model_dim = d;
    o.rank = c.rank;
    o.combine = parse_lopa_combine(c.lopa_combine);
    o.dropout = c.prompt_dropout;
    auto p = std::make_unique<LopaPrompt>(o);
    auto z = initial_prompt(c, fm, tok, m);
    if (z.defined()) p->set_shared_prompt(z);
    method = std::move(p);
  } else if (c.method == "pt") {
    PromptTuningOptions o;
    o.num_tokens = m;
    o.model_dim = d;
    o.base_model = c.model;
    auto p = std::make_unique<PromptTuning>(o);
    auto z = initial_prompt(c, fm, tok, m);
    if (z.defined()) p->set_prompt(z, c.prompt_init == "text" ? c.prompt_init_text : "");
    method = std::move(p);
  } else if (c.method == "idpg") {
    IdpgOptions o;
    o.encoder_dim = H;
    o.head_dim = c.head_dim > 0 ? c.head_dim : 256;
    o.num_tokens = m;
    o.model_dim = d;
    o.dropout = c.prompt_dropout;
    method = std::make_unique<Idpg>(o);
  } else if (c.method == "lora") {
    LoraOptions o;
    o.rank = c.rank;
    o.alpha = c.lora_alpha;
    o.dropout = c.lora_dropout;
    o.targets = parse_lora_targets(c.lora_targets);
    o.base_model = c.model;
    method = std::make_unique<Lora>(o, fm);
  } else if (c.method == "prefix") {
    PrefixTuningOptions o;
    o.num_tokens = m;
    o.projection = c.prefix_projection;
    o.projection_dim = c.prefix_hidden;
    o.base_model = c.model;
    method = std::make_unique<PrefixTuning>(o, fm);
  } else if (c.method == "fft") {
    method = std::make_unique<FullFinetune>(fm);
  } else {
    fail("--method: unknown value '", c.method, "'");
  }
  method->to(fm.device());
  return method;
}

}  // namespace lopa
