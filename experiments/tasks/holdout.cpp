#include "experiments/tasks/holdout.h"

#include <algorithm>
#include <cmath>

#include "runtime/base/error.h"

namespace lopa {

namespace {
// splitmix64 (Steele et al.): a fixed, platform-independent scramble of the position.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

bool task_uses_holdout(const std::string& task) { return task_info(task).family == TaskFamily::Glue; }

std::vector<int64_t> holdout_positions(int64_t n, const HoldoutRule& rule) {
  LOPA_CHECK(rule.fraction >= 0 && rule.fraction < 1, "holdout: must be in [0, 1), got ", rule.fraction);
  LOPA_CHECK(rule.max_count >= 0, "holdout-max: must be >= 0 (0: no cap), got ", rule.max_count);
  int64_t k = static_cast<int64_t>(std::llround(rule.fraction * static_cast<double>(n)));
  if (rule.max_count > 0) k = std::min(k, rule.max_count);
  std::vector<int64_t> pos(n);
  for (int64_t i = 0; i < n; ++i) pos[i] = i;
  std::partial_sort(pos.begin(), pos.begin() + k, pos.end(), [](int64_t a, int64_t b) {
    const uint64_t ha = splitmix64(static_cast<uint64_t>(a)), hb = splitmix64(static_cast<uint64_t>(b));
    return ha != hb ? ha < hb : a < b;
  });
  pos.resize(k);
  std::sort(pos.begin(), pos.end());
  return pos;
}

std::pair<std::vector<Example>, std::vector<Example>> split_holdout(std::vector<Example> train, const HoldoutRule& rule) {
  const auto held = holdout_positions(static_cast<int64_t>(train.size()), rule);
  std::vector<Example> kept, out;
  kept.reserve(train.size() - held.size());
  out.reserve(held.size());
  size_t h = 0;
  for (size_t i = 0; i < train.size(); ++i) {
    if (h < held.size() && held[h] == static_cast<int64_t>(i)) {
      out.push_back(std::move(train[i]));
      ++h;
    } else {
      kept.push_back(std::move(train[i]));
    }
  }
  return {std::move(kept), std::move(out)};
}

Dataset load_task_split(const std::string& task, const std::string& data_dir, const std::string& split,
                        const LoadOptions& opts, const HoldoutRule& holdout) {
  const bool holds = task_uses_holdout(task) && holdout.holds();
  if (split == kHoldoutSplit) {
    LOPA_CHECK(task_uses_holdout(task), "eval-split: ", task, " has no 'holdout' split (only GLUE tasks hold out part of train)");
    LOPA_CHECK(holdout.holds(), "eval-split: the 'holdout' split needs --holdout > 0");
  }
  if (!holds || (split != "train" && split != kHoldoutSplit)) return load_task(task, data_dir, split, opts);
  Dataset d = load_task(task, data_dir, "train", opts);
  auto parts = split_holdout(std::move(d.examples), holdout);
  d.split = split;
  d.examples = split == kHoldoutSplit ? std::move(parts.second) : std::move(parts.first);
  return d;
}

std::vector<std::string> training_eval_splits(const std::string& task, const std::string& eval_split,
                                              const HoldoutRule& holdout) {
  std::vector<std::string> out;
  std::string item;
  for (size_t i = 0; i <= eval_split.size(); ++i) {
    if (i == eval_split.size() || eval_split[i] == ',') {
      const auto b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
      if (b != std::string::npos) item = item.substr(b, e - b + 1);
      else item.clear();
      LOPA_CHECK(!item.empty() || eval_split.empty(), "eval-split: empty entry in '", eval_split, "'");
      if (!item.empty()) {
        LOPA_CHECK(std::find(out.begin(), out.end(), item) == out.end(), "eval-split: '", item, "' given twice");
        out.push_back(item);
      }
      item.clear();
    } else {
      item += eval_split[i];
    }
  }
  if (!out.empty()) return out;
  const TaskInfo& info = task_info(task);
  if (info.family == TaskFamily::Generated) return {"dev", "test"};
  if (task_uses_holdout(task) && holdout.holds()) return {kHoldoutSplit, info.eval_split};
  return {info.eval_split};
}

}  // namespace lopa
