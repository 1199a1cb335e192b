// The training keys a cell may set — DESIGN.md §3's core keys plus the method-specific ones — with
// the methods that use each key and how its value is checked, so a spec never names a key (or a
// value) `lopa train` rejects. The same names, in the same order, as the trainer's own table
// (experiments/train_config.cpp, which lives in a LibTorch library cluster/ must not link); a test
// compares the two through `lopa train --help`.
#pragma once

#include <string>
#include <vector>

namespace lopa::cluster {

enum class KeyType {
  Text,         // any non-empty text
  Path,         // a file or directory path (not checked for existence at plan time)
  Int,          // any integer
  PositiveInt,  // > 0
  Count,        // >= 0
  PositiveReal, // > 0
  Fraction,     // in [0, 1)
  Real,         // any real number
  Choice,       // one of `choices`
  Bool,         // true|false|1|0|yes|no
};

struct TrainKey {
  const char* name;     // as written in INI files and on the command line (--name)
  KeyType type;
  const char* methods;  // comma-separated methods that use the key; "" = every method
  const char* choices;  // KeyType::Choice: comma-separated accepted values
  const char* help;     // one line for --help
};

// Every key, in the canonical order used for cell slugs, config files and hashing display.
const std::vector<TrainKey>& train_keys();

// nullptr when `name` is not a training key.
const TrainKey* find_train_key(const std::string& name);

// Methods and tasks the trainer accepts (DESIGN.md §3).
const std::vector<std::string>& method_names();
const std::vector<std::string>& task_names();

// True when `method` reads key `k` (rank only for lopa and lora, num-virtual-tokens for the prompt
// methods, ...). Keys with an empty method list are used by every method.
bool method_uses(const TrainKey& k, const std::string& method);

// Throws lopa::Error "<where>: <key> = '<value>': <why>" when `value` is not acceptable for `k`.
void check_train_value(const TrainKey& k, const std::string& value, const std::string& where);

// Splits "a, b ,c" into {"a","b","c"} (trimmed); empty items are kept as "" for the caller to reject.
std::vector<std::string> split_list(const std::string& text, char sep = ',');
std::string trim(const std::string& s);

}  // namespace lopa::cluster
