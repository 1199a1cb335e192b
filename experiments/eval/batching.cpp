#include "experiments/eval/batching.h"

#include <algorithm>
#include <random>

#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

namespace {
std::vector<int64_t> encode_prompt(const Tokenizer& tok, const std::string& text) {
  auto ids = tok.encode(text, false);
  if (tok.adds_bos() && tok.bos_id()) ids.insert(ids.begin(), *tok.bos_id());
  return ids;
}
// Keeps BOS (when present) and the last `keep` - 1 tokens.
void cut_left(std::vector<int64_t>& ids, int64_t keep, bool has_bos) {
  if (static_cast<int64_t>(ids.size()) <= keep) return;
  LOPA_CHECK(keep >= 1 + (has_bos ? 1 : 0), "max-length is too small for the targets of this task");
  std::vector<int64_t> out;
  if (has_bos) out.push_back(ids[0]);
  out.insert(out.end(), ids.end() - (keep - static_cast<int64_t>(out.size())), ids.end());
  ids.swap(out);
}
}  // namespace

std::vector<int64_t> encoder_input_ids(const Tokenizer& tok, const std::string& text, int64_t max_length) {
  auto full = tok.encode(text, true);
  if (static_cast<int64_t>(full.size()) <= max_length) return full;
  // The content's place among the special tokens: what encode(text, false) gives, found inside `full`.
  const auto content = tok.encode(text, false);
  const int64_t n = static_cast<int64_t>(content.size()), specials = static_cast<int64_t>(full.size()) - n;
  LOPA_CHECK(specials >= 0 && max_length > specials, "encoder-max-length ", max_length,
             " leaves no room beside the encoder's ", specials, " special tokens");
  int64_t at = -1;
  for (int64_t p = 0; p + n <= static_cast<int64_t>(full.size()) && at < 0; ++p)
    if (std::equal(content.begin(), content.end(), full.begin() + p)) at = p;
  LOPA_CHECK(at >= 0, "encoder tokenizer: the text's ids are not contiguous among its special tokens");
  std::vector<int64_t> out(full.begin(), full.begin() + at);
  out.insert(out.end(), content.end() - (max_length - specials), content.end());
  out.insert(out.end(), full.begin() + at + n, full.end());
  return out;
}

std::vector<TrainItem> make_items(const std::string& task, const std::vector<Example>& examples,
                                  const TemplateConfig& tmpl, const Tokenizer& tok, const Tokenizer* encoder_tok,
                                  int64_t max_length, int64_t encoder_max_length) {
  std::vector<TrainItem> items;
  items.reserve(examples.size());
  const TaskInfo& info = task_info(task);
  for (const auto& ex : examples) {
    TrainItem it;
    it.id = ex.id;
    std::string prompt;
    std::vector<std::string> targets;
    if (info.generated) {
      prompt = info.generated->prompt(ex);
      targets = info.generated->targets(ex);
      it.target_labels = info.labels;
    } else if (info.family != TaskFamily::Glue) {
      // Code tasks: one target, the reference (MBPP's solution, CruxEval's completed assertion).
      auto pair = make_prompt_pair(task, ex, tmpl);
      prompt = pair.prompt;
      targets = {pair.target};
      it.target_labels = {""};
    } else {
      auto cands = label_candidates(task, ex, tmpl);
      LOPA_CHECK(!cands.empty(), task, ": task has no label candidates (only classification tasks train here)");
      prompt = cands[0].prompt;
      for (const auto& c : cands) targets.push_back(c.target);
      it.target_labels = info.labels;
    }
    it.gold = targets.size() == 1 ? 0 : ex.label_index;  // code tasks: the reference is the one target
    it.prompt = encode_prompt(tok, prompt);
    size_t longest = 0;
    for (const auto& t : targets) {
      it.targets.push_back(tok.encode(t, false));
      LOPA_CHECK(!it.targets.back().empty(), task, ": target '", t, "' encodes to no tokens");
      // A long code target keeps its beginning and leaves at least a quarter of max_length to the prompt.
      const size_t room = static_cast<size_t>(std::max<int64_t>(1, max_length - max_length / 4));
      if (it.targets.back().size() > room) it.targets.back().resize(room);
      longest = std::max(longest, it.targets.back().size());
    }
    const bool bos = tok.adds_bos() && tok.bos_id().has_value();
    cut_left(it.prompt, max_length - static_cast<int64_t>(longest), bos);
    if (encoder_tok) {
      it.encoder_input = encoder_input_ids(*encoder_tok, prompt, encoder_max_length);
    } else {
      it.encoder_input = it.prompt;
    }
    items.push_back(std::move(it));
  }
  return items;
}

namespace {
TokenBatch collate(const std::vector<std::pair<const std::vector<int64_t>*, const std::vector<int64_t>*>>& rows,
                   int64_t pad_id) {
  int64_t T = 0;
  for (const auto& [p, t] : rows) T = std::max<int64_t>(T, p->size() + t->size());
  const int64_t B = rows.size();
  auto ids = at::full({B, T}, pad_id, at::kLong), mask = at::zeros({B, T}, at::kLong),
       labels = at::full({B, T}, -100, at::kLong);
  auto I = ids.accessor<int64_t, 2>(), M = mask.accessor<int64_t, 2>(), L = labels.accessor<int64_t, 2>();
  TokenBatch b;
  for (int64_t r = 0; r < B; ++r) {
    const auto& p = *rows[r].first;
    const auto& t = *rows[r].second;
    int64_t j = 0;
    for (auto v : p) I[r][j] = v, M[r][j] = 1, ++j;
    for (auto v : t) I[r][j] = v, M[r][j] = 1, L[r][j] = v, ++j;
    b.target_tokens.push_back(t.size());
    b.num_target_tokens += t.size();
  }
  b.ids = ids;
  b.mask = mask;
  b.labels = labels;
  return b;
}
}  // namespace

TokenBatch training_batch(const std::vector<TrainItem>& items, const std::vector<int64_t>& idx, int64_t pad_id) {
  std::vector<std::pair<const std::vector<int64_t>*, const std::vector<int64_t>*>> rows;
  for (auto i : idx) {
    const auto& it = items.at(i);
    LOPA_CHECK(it.gold >= 0, "training example ", it.id, " has no label");
    rows.emplace_back(&it.prompt, &it.targets.at(it.gold));
  }
  auto b = collate(rows, pad_id);
  for (auto i : idx) b.item.push_back(i), b.candidate.push_back(items[i].gold);
  return b;
}

TokenBatch scoring_batch(const std::vector<TrainItem>& items, const std::vector<int64_t>& idx, int64_t pad_id) {
  std::vector<std::pair<const std::vector<int64_t>*, const std::vector<int64_t>*>> rows;
  std::vector<int64_t> item, cand;
  for (auto i : idx)
    for (size_t c = 0; c < items.at(i).targets.size(); ++c) {
      rows.emplace_back(&items[i].prompt, &items[i].targets[c]);
      item.push_back(i);
      cand.push_back(c);
    }
  auto b = collate(rows, pad_id);
  b.item = item;
  b.candidate = cand;
  return b;
}

std::pair<at::Tensor, at::Tensor> encoder_batch(const std::vector<TrainItem>& items, const std::vector<int64_t>& idx,
                                                int64_t pad_id) {
  static const std::vector<int64_t> none;
  std::vector<std::pair<const std::vector<int64_t>*, const std::vector<int64_t>*>> rows;
  for (auto i : idx) rows.emplace_back(&items.at(i).encoder_input, &none);
  auto b = collate(rows, pad_id);
  return {b.ids, b.mask};
}

std::vector<int64_t> longest_first(const std::vector<TrainItem>& items) {
  std::vector<size_t> length(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    size_t target = 0;
    for (const auto& t : items[i].targets) target = std::max(target, t.size());
    length[i] = items[i].prompt.size() + target;
  }
  std::vector<int64_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return length[a] > length[b]; });
  return order;
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch) * 7919ULL + 17);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % static_cast<uint64_t>(i + 1)]);
  return order;
}

}  // namespace lopa
