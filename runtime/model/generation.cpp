// Batched generation with a KV cache: one prefill over the left-padded prompts, then one token per step.
#include "runtime/model/generation.h"

#include <c10/core/InferenceMode.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>

#include "runtime/io/dtype.h"
#include "runtime/base/error.h"
#include "runtime/model/architecture.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/causal_lm.h"

namespace lopa {

int64_t sample_next(const at::Tensor& logits_in, double temperature, double top_p, at::Generator& gen) {
  auto logits = logits_in.to(at::kCPU, at::kFloat).reshape({-1});
  if (temperature <= 0) return logits.argmax().item<int64_t>();
  auto scores = logits / temperature;
  if (top_p < 1.0) {
    // HF TopPLogitsWarper: drop the smallest tokens whose cumulative probability stays within 1 - top_p,
    // always keeping the most likely one.
    auto sorted = scores.sort(/*dim=*/-1, /*descending=*/false);
    auto sorted_logits = std::get<0>(sorted), sorted_idx = std::get<1>(sorted);
    auto cum = sorted_logits.softmax(-1).cumsum(-1);
    auto remove = cum <= (1.0 - top_p);
    remove[-1] = false;
    auto mask = at::zeros_like(remove).scatter_(0, sorted_idx, remove);
    scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  }
  auto probs = scores.softmax(-1);
  return at::multinomial(probs, 1, /*replacement=*/false, gen).item<int64_t>();
}

std::vector<std::vector<int64_t>> generate(const CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerationConfig& cfg, const at::Tensor& soft_prompt,
                                           const KVPrefix* prefix) {
  // Inference mode, not just no-grad: nothing made here (cache, logits) ever meets autograd, and it
  // skips the version counters and autograd dispatch of each of the ~40 small ops per layer and token.
  c10::InferenceMode inference;
  const int64_t B = static_cast<int64_t>(prompts.size());
  std::vector<std::vector<int64_t>> out(B);
  if (B == 0 || cfg.max_new_tokens <= 0) return out;
  const auto& mc = model.config();
  LOPA_CHECK(model.architecture().spec().causal, mc.architecture,
             " is a bidirectional encoder: it has no KV cache of earlier tokens and cannot generate");
  std::vector<int64_t> eos = cfg.eos_token_ids.empty() ? mc.eos_token_ids : cfg.eos_token_ids;
  int64_t pad = cfg.pad_token_id >= 0 ? cfg.pad_token_id : mc.pad_token_id >= 0 ? mc.pad_token_id : !eos.empty() ? eos[0] : 0;

  int64_t L = 0;
  for (const auto& p : prompts) {
    LOPA_CHECK(!p.empty() || soft_prompt.defined(), "generate: empty prompt");
    L = std::max<int64_t>(L, p.size());
    for (auto id : p) LOPA_CHECK(id >= 0 && id < mc.vocab_size, "generate: token id ", id, " outside the vocabulary (", mc.vocab_size, ")");
  }
  auto ids = at::full({B, L}, pad, at::TensorOptions().dtype(at::kLong));
  auto mask = at::zeros({B, L}, at::TensorOptions().dtype(at::kLong));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = prompts[b].size();
    if (n == 0) continue;
    ids[b].narrow(0, L - n, n).copy_(at::tensor(prompts[b], at::TensorOptions().dtype(at::kLong)));
    mask[b].narrow(0, L - n, n).fill_(1);
  }
  auto embeds = model.embed(ids);
  mask = mask.to(model.device());
  int64_t m = 0;
  if (soft_prompt.defined()) {
    LOPA_CHECK(soft_prompt.dim() == 3 && (soft_prompt.size(0) == 1 || soft_prompt.size(0) == B) &&
                   soft_prompt.size(2) == model.hidden_size(),
               "generate: soft prompt ", shape_string(soft_prompt.sizes()), " must be (1 or B) × m × ", model.hidden_size());
    m = soft_prompt.size(1);
    auto sp = soft_prompt.to(model.device(), embeds.scalar_type()).expand({B, m, model.hidden_size()});
    embeds = at::cat({sp, embeds}, 1);
    mask = at::cat({at::ones({B, m}, mask.options()), mask}, 1);
  }
  auto cache = KVCache::for_model(model, B, m + L + cfg.max_new_tokens);
  if (prefix) cache.set_prefix(prefix->keys, prefix->values);

  std::vector<at::Generator> gens;
  for (int64_t b = 0; b < B; ++b) gens.push_back(at::detail::createCPUGenerator(cfg.seed));
  std::vector<bool> done(B, false);
  int64_t n_done = 0;

  // Only the last column's state is read (left padding: the last real token of every row).
  auto h = model.forward(embeds, mask, &cache, {}, embeds.size(1) - 1);
  auto last = h.select(1, 0);  // B × d
  for (int64_t step = 0; step < cfg.max_new_tokens; ++step) {
    auto logits = model.lm_logits(last).to(at::kCPU, at::kFloat);  // B × V
    // NaN logits argmax to token 0: a diverged checkpoint would "generate" [0, 0, ...] without a word.
    LOPA_CHECK(!at::isnan(logits).any().item<bool>() && !at::isposinf(logits).any().item<bool>(),
               "generate: the logits of generated token ", step + 1, " hold NaN or +Inf (non-finite weights or ",
               "activations; `lopa info --model DIR --check-weights` names non-finite weights)");
    std::vector<int64_t> next(B, pad);
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      const int64_t tok = sample_next(logits[b], cfg.temperature, cfg.top_p, gens[b]);
      out[b].push_back(tok);
      next[b] = tok;
      if (std::find(eos.begin(), eos.end(), tok) != eos.end()) {
        done[b] = true;
        ++n_done;
      }
    }
    if (n_done == B || step + 1 == cfg.max_new_tokens) break;
    auto step_ids = at::tensor(next, at::TensorOptions().dtype(at::kLong)).view({B, 1});
    h = model.forward(model.embed(step_ids), at::ones({B, 1}, mask.options()), &cache);
    last = h.select(1, 0);
  }
  return out;
}

}  // namespace lopa
