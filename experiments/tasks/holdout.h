// The fixed validation subset of a task's train split (issue 17): GLUE's paper numbers are on dev, so a
// run that reports dev selects its configuration and step on `holdout`, examples taken out of train.
// Which ones: the k = min(round(fraction × N), max_count) training examples whose splitmix64 hash of their
// 0-based position in the train file is smallest (max_count 0: no cap). The cap is 1,000 by default, the
// protocol of Zhang et al. 2021 and Karimi Mahabadi et al. 2021 (1k examples of train as validation data
// for the large GLUE tasks): a selection split of SST-2's 10 % (6,735) or QQP's (36k) would cost more to
// evaluate than the training steps between evaluations. The subset depends on neither the seed nor
// max-train-examples, and a larger k holds out a superset.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "experiments/tasks/task.h"

namespace lopa {

inline constexpr const char* kHoldoutSplit = "holdout";

// Whether `task` takes a holdout from train when holdout > 0: the GLUE tasks (they report dev).
bool task_uses_holdout(const std::string& task);

// The held-out share of train: `fraction` of it, at most `max_count` examples (0: no cap).
struct HoldoutRule {
  double fraction = 0.1;
  int64_t max_count = 1000;
  bool holds() const { return fraction > 0; }
};

// The positions (ascending) of the held-out examples among n; throws unless 0 <= fraction < 1 and
// max_count >= 0.
std::vector<int64_t> holdout_positions(int64_t n, const HoldoutRule& rule);

// (train without the holdout, the holdout), both in file order.
std::pair<std::vector<Example>, std::vector<Example>> split_holdout(std::vector<Example> train, const HoldoutRule& rule);

// load_task with the holdout applied: split "holdout" is the held-out part of train, and "train" of a
// task that holds out (GLUE, holdout > 0) is the rest. Asking a holdout of another task, or with
// holdout = 0, is an error naming the keys.
Dataset load_task_split(const std::string& task, const std::string& data_dir, const std::string& split,
                        const LoadOptions& opts, const HoldoutRule& holdout);

// The splits a training run evaluates at each evaluation; the first selects the kept adapter.
// `eval_split` (comma list) when given; else GLUE: holdout, dev (dev alone when holdout = 0); the
// generated tasks: dev, test; code tasks: their reported split.
std::vector<std::string> training_eval_splits(const std::string& task, const std::string& eval_split,
                                              const HoldoutRule& holdout);

}  // namespace lopa
