// The sweep planner's view of the training keys: the table itself is experiments/train_keys.h
// (header-only, LibTorch-free), which `lopa train` reads too, so a spec can name no key and give no
// value that `lopa train` rejects. Here: the method and task lists, which methods read a key, and the
// check of a spec's value, worded for spec files.
#pragma once

#include <string>
#include <vector>

#include "experiments/tasks/train_keys.h"

namespace lopa::cluster {

// Methods and tasks the trainer accepts (DESIGN.md §3): the choices of the table's method and task keys.
const std::vector<std::string>& method_names();
const std::vector<std::string>& task_names();

// True when `method` reads key `k` (rank only for lopa and lora, num-virtual-tokens for the prompt
// methods, ...). Keys with an empty method list are used by every method.
bool method_uses(const TrainKey& k, const std::string& method);

// Throws lopa::Error "<where>: <key> = '<value>': <why>" when `value` is not acceptable for `k`
// (the table's rule; an empty value is never acceptable in a spec).
void check_train_value(const TrainKey& k, const std::string& value, const std::string& where);

// Splits "a, b ,c" into {"a","b","c"} (trimmed); empty items are kept as "" for the caller to reject.
std::vector<std::string> split_list(const std::string& text, char sep = ',');
std::string trim(const std::string& s);

}  // namespace lopa::cluster
