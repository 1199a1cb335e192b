// lopa::Error: the one exception type of the project. Messages are one line that names the file
// (or option, or rank) and the problem; the CLI catches it once and exits non-zero.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace lopa {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<< into one message.
template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(::lopa::str(args...));
}

}  // namespace lopa

// LOPA_CHECK(cond, parts...): throws lopa::Error(parts...) when cond is false.
#define LOPA_CHECK(cond, ...)              \
  do {                                     \
    if (!(cond)) ::lopa::fail(__VA_ARGS__); \
  } while (0)
