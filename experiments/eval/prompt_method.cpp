#include "experiments/eval/prompt_method.h"

#include <algorithm>

#include "lopa/method.h"
#include "runtime/base/error.h"
#include "runtime/model/architecture.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/encoder.h"

namespace lopa {

at::Tensor encode_instances(const CausalLM& enc, const std::vector<TrainItem>& items, const std::vector<int64_t>& idx,
                            const std::string& pooling, int64_t batch_size, int64_t pad_id, bool with_grad) {
  c10::AutoGradMode grad_mode(with_grad);
  const Pooling rule = resolve_pooling(enc.architecture(), parse_pooling(pooling, "encoder-pooling"));
  // Batches of similar length, longest first (less padding than the given order, and the largest
  // allocation up front); the rows return to the given order at the end.
  std::vector<int64_t> order(idx.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return items.at(idx[a]).encoder_input.size() > items.at(idx[b]).encoder_input.size();
  });
  std::vector<at::Tensor> out;
  for (size_t s = 0; s < order.size(); s += batch_size) {
    std::vector<int64_t> part;
    for (size_t j = s; j < std::min(order.size(), s + static_cast<size_t>(batch_size)); ++j) part.push_back(idx[order[j]]);
    auto [ids, mask] = encoder_batch(items, part, pad_id);
    ids = ids.to(enc.device());
    mask = mask.to(enc.device());
    // Positions as the family computes them (RoBERTa counts from padding_idx + 1 over real tokens).
    int64_t keep_from = 0;
    // Only each row's last real state is read: the last block runs from the earliest of them on.
    if (rule == Pooling::Last && enc.causal()) keep_from = last_real_positions(mask).min().item<int64_t>();
    auto hidden = enc.forward(enc.embed(ids), mask, nullptr, enc.architecture().position_ids(ids), keep_from);
    const auto kept_mask = mask.narrow(1, keep_from, mask.size(1) - keep_from);
    out.push_back(pool_hidden(hidden.to(at::kFloat), kept_mask, rule).contiguous());
  }
  std::vector<int64_t> back(order.size());  // back[i]: the sorted row holding idx[i]
  for (size_t j = 0; j < order.size(); ++j) back[order[j]] = static_cast<int64_t>(j);
  auto sorted = at::cat(out, 0);
  return sorted.index_select(0, at::tensor(back, at::kLong).to(sorted.device()));
}

at::Tensor method_forward(Method& method, CausalLM& fm, const TokenBatch& batch, const at::Tensor& enc,
                          at::Tensor& labels, const InputLayout& layout, bool labelled_tail) {
  const auto dev = fm.device();
  auto ids = batch.ids.to(dev), mask = batch.mask.to(dev);
  labels = batch.labels.to(dev);
  const int64_t B = ids.size(0);
  auto embeds = fm.embed(ids);
  auto z = method.soft_prompt(method.needs_encoder() ? enc : at::Tensor(), B);
  if (z.defined()) {
    const int64_t P = z.size(1), col = layout.prompt_at;
    LOPA_CHECK(col >= 0 && col <= ids.size(1), "method_forward: soft prompt at column ", col, " of ", ids.size(1));
    auto insert = [col](const at::Tensor& t, const at::Tensor& mid) {
      return at::cat({t.narrow(1, 0, col), mid, t.narrow(1, col, t.size(1) - col)}, 1);
    };
    embeds = insert(embeds, z.to(dev, embeds.scalar_type()));
    mask = insert(mask, at::ones({B, P}, mask.options()));
    labels = insert(labels, at::full({B, P}, -100, labels.options()));
  }
  at::Tensor pos;
  if (layout.family_positions) {
    // HF shifts positions by the cached length (past_key_values_length), a KV prefix's here; with right
    // padding the real tokens get the positions their ids would give.
    pos = fm.architecture().embeds_position_ids(B, embeds.size(1), dev) + method.cache_prefix_length();
  }
  int64_t keep_from = 0;
  if (labelled_tail && fm.causal()) {
    const auto labelled = labels.ne(-100).any(0).nonzero();
    if (labelled.numel() > 0) keep_from = std::max<int64_t>(0, labelled.min().item<int64_t>() - 1);
    labels = labels.narrow(1, keep_from, labels.size(1) - keep_from);
  }
  if (method.cache_prefix_length() > 0) {
    auto cache = KVCache::for_model(fm, B, embeds.size(1));
    method.seed_cache(cache, fm, B);
    return fm.forward(embeds, mask, &cache, pos, keep_from);
  }
  return fm.forward(embeds, mask, nullptr, pos, keep_from);
}

at::Tensor sequence_log_likelihood(const CausalLM& fm, const at::Tensor& hidden, const at::Tensor& labels) {
  const int64_t B = labels.size(0), T = labels.size(1);
  auto next = labels.narrow(1, 1, T - 1);  // label predicted from position t-1
  auto keep = next.ne(-100);
  auto rows = at::arange(B, labels.options()).unsqueeze(1).expand({B, T - 1}).masked_select(keep);
  auto h = hidden.narrow(1, 0, T - 1).masked_select(keep.unsqueeze(-1)).view({-1, hidden.size(2)});
  auto logp = at::log_softmax(fm.lm_logits(h).to(at::kFloat), -1);
  auto tok = logp.gather(1, next.masked_select(keep).unsqueeze(1)).squeeze(1).to(at::kDouble).cpu();
  return at::zeros({B}, at::kDouble).index_add_(0, rows.cpu(), tok);
}

}  // namespace lopa
