#include "cluster/train_keys.h"

#include <algorithm>

#include "runtime/base/error.h"

namespace lopa::cluster {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_list(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == sep) {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(trim(cur));
  return out;
}

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> v = split_list(find_train_key("method")->choices);
  return v;
}

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> v = split_list(find_train_key("task")->choices);
  return v;
}

bool method_uses(const TrainKey& k, const std::string& method) {
  if (!*k.methods) return true;
  const auto ms = split_list(k.methods);
  return std::find(ms.begin(), ms.end(), method) != ms.end();
}

void check_train_value(const TrainKey& k, const std::string& value, const std::string& where) {
  const auto bad = [&](const std::string& why) { fail(where, ": ", k.name, " = '", value, "': ", why); };
  if (value.empty()) bad("empty value");
  long long i = 0;
  double x = 0;
  bool b = false;
  switch (k.type) {
    case KeyType::Text:
    case KeyType::Path:
      break;
    case KeyType::Int:
      if (!parse_key_int(value, i)) bad("not an integer");
      // Positive integers (rank, tp, ...) keep the wording specs have always seen.
      if (i < k.min) bad(k.min == 1 ? std::string("must be > 0") : str("must be >= ", k.min));
      break;
    case KeyType::Real:
      if (!parse_key_real(value, x)) bad("not a number");
      if (x < k.min) bad(str("must be >= ", k.min));
      break;
    case KeyType::Fraction:
      if (!parse_key_real(value, x)) bad("not a number");
      if (x < 0 || x >= 1) bad("must be in [0, 1)");
      break;
    case KeyType::Choice: {
      const auto cs = split_list(k.choices);
      if (std::find(cs.begin(), cs.end(), value) == cs.end()) bad(str("unknown ", k.name, " (expected one of ", k.choices, ")"));
      break;
    }
    case KeyType::Bool:
      if (!parse_key_bool(value, b)) bad("not a boolean (true|false)");
      break;
  }
}

}  // namespace lopa::cluster
