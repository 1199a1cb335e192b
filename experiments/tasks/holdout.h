// The fixed validation subset of a task's train split (issue 17): GLUE's paper numbers are on dev, so a
// run that reports dev selects its configuration and step on `holdout`, examples taken out of train.
// Which ones: the round(fraction × N) training examples whose splitmix64 hash of their 0-based position
// in the train file is smallest. The subset depends on neither the seed nor max-train-examples, and a
// larger fraction holds out a superset.
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

// The positions (ascending) of the held-out examples among n; throws unless 0 <= fraction < 1.
std::vector<int64_t> holdout_positions(int64_t n, double fraction);

// (train without the holdout, the holdout), both in file order.
std::pair<std::vector<Example>, std::vector<Example>> split_holdout(std::vector<Example> train, double fraction);

// load_task with the holdout applied: split "holdout" is the held-out part of train, and "train" of a
// task that holds out (GLUE, holdout > 0) is the rest. Asking a holdout of another task, or with
// holdout = 0, is an error naming the keys.
Dataset load_task_split(const std::string& task, const std::string& data_dir, const std::string& split,
                        const LoadOptions& opts, double holdout);

// The splits a training run evaluates at each evaluation; the first selects the kept adapter.
// `eval_split` (comma list) when given; else GLUE: holdout, dev (dev alone when holdout = 0); the
// generated tasks: dev, test; code tasks: their reported split.
std::vector<std::string> training_eval_splits(const std::string& task, const std::string& eval_split, double holdout);

}  // namespace lopa
