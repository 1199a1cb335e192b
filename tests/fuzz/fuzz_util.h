// Seeded mutation fuzzing of lopa's file parsers, in process. A case takes a valid input, applies
// mutations drawn from a seeded generator (bit flips, truncation, huge numbers, invalid UTF-8, deep
// nesting, NaN, line edits), writes it to a file and runs the parser on that file. The parser must
// either succeed or throw lopa::Error whose message is one line and names the file: any other
// exception fails the case; a crash or a hang ends the process with the case's label on stderr
// (signal handler, alarm), so every finding can be replayed from its seed.
#pragma once

#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include "runtime/base/error.h"

namespace lopa::fuzz {

// The case running now, for the crash and hang handlers (async-signal-safe: a fixed buffer).
inline char g_case[512] = "";
inline constexpr unsigned kCaseSeconds = 20;  // one case longer than this is a hang

extern "C" inline void on_fatal_signal(int sig) {
  const char* head = sig == SIGALRM ? "\nFUZZ HANG (no result within the case limit) in case: "
                                    : "\nFUZZ CRASH (fatal signal) in case: ";
  if (write(2, head, std::strlen(head)) < 0) {}
  if (write(2, g_case, std::strlen(g_case)) < 0) {}
  if (write(2, "\n", 1) < 0) {}
  signal(sig == SIGALRM ? SIGABRT : sig, SIG_DFL);
  raise(sig == SIGALRM ? SIGABRT : sig);
}

inline void install_handlers() {
  static bool done = false;
  if (done) return;
  done = true;
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM}) signal(s, on_fatal_signal);
}

// LOPA_FUZZ_SCALE=N runs N times the cases of every campaign (the same seeds, more cases each), for a
// longer search than the suite's default.
inline int case_scale() {
  const char* s = std::getenv("LOPA_FUZZ_SCALE");
  const int n = s ? std::atoi(s) : 1;
  return n > 0 ? n : 1;
}

inline std::string temp_dir(const std::string& tag) {
  std::string t = "/tmp/lopa-fuzz-" + tag + ".XXXXXX";
  std::vector<char> buf(t.begin(), t.end());
  buf.push_back('\0');
  const char* d = mkdtemp(buf.data());
  return d ? std::string(d) : std::string();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), (std::streamsize)bytes.size());
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Mutations of a byte string, each drawn from the generator; `note` collects what was done.
class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  size_t below(size_t n) { return n == 0 ? 0 : (size_t)(rng_() % n); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  std::mt19937_64& rng() { return rng_; }
  std::string note;

  void flip_bits(std::string& s, int max_flips = 8) {
    if (s.empty()) return;
    const int n = 1 + (int)below((size_t)max_flips);
    for (int i = 0; i < n; ++i) s[below(s.size())] ^= (char)(1u << below(8));
    note += "flip" + std::to_string(n) + " ";
  }
  void truncate(std::string& s) {
    const size_t n = below(s.size() + 1);
    s.resize(n);
    note += "truncate@" + std::to_string(n) + " ";
  }
  void insert(std::string& s, const std::string& what, const char* tag) {
    const size_t at = below(s.size() + 1);
    s.insert(at, what);
    note += std::string(tag) + "@" + std::to_string(at) + " ";
  }
  std::string invalid_utf8() {
    static const char* bad[] = {"\xff", "\xc3\x28", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "\xe2\x82",
                                "\x80", "\xf0\x9f\x98"};
    return bad[below(sizeof bad / sizeof bad[0])];
  }
  void insert_invalid_utf8(std::string& s) { insert(s, invalid_utf8(), "badutf8"); }
  // A number that no field can hold, or an IEEE special, or a sign flip, as JSON/INI text.
  std::string odd_number() {
    static const char* v[] = {"NaN", "nan", "Infinity", "-Infinity", "inf", "1e999", "-1e999", "-1", "0", "-0",
                              "18446744073709551615", "18446744073709551616", "9223372036854775807",
                              "-9223372036854775808", "4294967296", "2147483648", "99999999999999999999999",
                              "1e18", "3.5", "-2.5e-310", "0x10", "1e", "--1", "\"12\"", "null", "true", "[]", "{}"};
    return v[below(sizeof v / sizeof v[0])];
  }
  // Replaces one number of the text (a run of digits, with sign, fraction and exponent) by odd_number().
  bool replace_number(std::string& s) {
    std::vector<std::pair<size_t, size_t>> spans;
    for (size_t i = 0; i < s.size();) {
      if (std::isdigit((unsigned char)s[i]) && (i == 0 || !std::isalnum((unsigned char)s[i - 1]))) {
        size_t b = i > 0 && s[i - 1] == '-' ? i - 1 : i, e = i;
        while (e < s.size() && (std::isdigit((unsigned char)s[e]) || s[e] == '.' || s[e] == 'e' || s[e] == 'E' ||
                                s[e] == '+' || s[e] == '-'))
          ++e;
        spans.emplace_back(b, e);
        i = e;
      } else {
        ++i;
      }
    }
    if (spans.empty()) return false;
    const auto [b, e] = spans[below(spans.size())];
    const std::string n = odd_number();
    s.replace(b, e - b, n);
    note += "number@" + std::to_string(b) + "=" + n + " ";
    return true;
  }
  // `depth` nested arrays (or objects) around a scalar: JSON text.
  static std::string nested(int depth, bool objects) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += objects ? "{\"k\":" : "[";
    s += "1";
    for (int i = 0; i < depth; ++i) s += objects ? "}" : "]";
    return s;
  }
  // Lines of the text: delete, duplicate, swap or blank one, or glue two together.
  void edit_lines(std::string& s) {
    std::vector<std::string> lines;
    std::stringstream ss(s);
    std::string l;
    while (std::getline(ss, l)) lines.push_back(l);
    if (lines.empty()) return;
    const size_t i = below(lines.size()), j = below(lines.size());
    switch (below(6)) {
      case 0: lines.erase(lines.begin() + (long)i); note += "delline" + std::to_string(i) + " "; break;
      case 1: lines.insert(lines.begin() + (long)i, lines[j]); note += "dupline" + std::to_string(j) + " "; break;
      case 2: std::swap(lines[i], lines[j]); note += "swaplines " ; break;
      case 3: lines[i].clear(); note += "blankline" + std::to_string(i) + " "; break;
      case 4: if (i + 1 < lines.size()) { lines[i] += lines[i + 1]; lines.erase(lines.begin() + (long)i + 1); } note += "glue "; break;
      default: lines[i] = lines[i].substr(0, below(lines[i].size() + 1)); note += "cutline" + std::to_string(i) + " "; break;
    }
    s.clear();
    for (const auto& x : lines) s += x + "\n";
  }

 private:
  std::mt19937_64 rng_;
};

// One mutation of JSON text: bit flips, truncation, an odd number (huge, negative, NaN, ...), invalid
// UTF-8 inside a string, a nested value under a new key (at most `max_depth` deep), a value replaced
// by NaN, or a structural character dropped or duplicated.
inline void mutate_json(std::string& s, Mutator& m, int max_depth) {
  switch (m.below(9)) {
    case 0: m.flip_bits(s); break;
    case 1: m.truncate(s); break;
    case 2: case 3: if (!m.replace_number(s)) m.flip_bits(s); break;
    case 4: {  // invalid UTF-8 just after an opening quote
      std::vector<size_t> quotes;
      for (size_t i = 0; i < s.size(); ++i) if (s[i] == '"') quotes.push_back(i + 1);
      if (quotes.empty()) { m.insert_invalid_utf8(s); break; }
      const size_t at = quotes[m.below(quotes.size())];
      s.insert(at, m.invalid_utf8());
      m.note += "badutf8@" + std::to_string(at) + " ";
      break;
    }
    case 5: {  // a nested value under a new key of the first object
      const size_t brace = s.find('{');
      if (brace == std::string::npos) { m.flip_bits(s); break; }
      const int depth = 1 + (int)m.below((size_t)max_depth);
      const bool objects = m.chance(0.5);
      s.insert(brace + 1, "\"zz_fuzz\": " + Mutator::nested(depth, objects) + ", ");
      m.note += std::string("nest") + (objects ? "obj" : "arr") + std::to_string(depth) + " ";
      break;
    }
    case 6: {  // a value (after a colon) becomes NaN / Infinity / a huge number
      std::vector<size_t> colons;
      for (size_t i = 0; i < s.size(); ++i) if (s[i] == ':') colons.push_back(i + 1);
      if (colons.empty()) { m.flip_bits(s); break; }
      const size_t at = colons[m.below(colons.size())];
      size_t end = at;
      while (end < s.size() && s[end] == ' ') ++end;
      if (end < s.size() && (std::isdigit((unsigned char)s[end]) || s[end] == '-' || s[end] == 't' || s[end] == 'f' || s[end] == 'n')) {
        size_t e = end;
        while (e < s.size() && s[e] != ',' && s[e] != '}' && s[e] != ']' && s[e] != '\n') ++e;
        const std::string v = m.odd_number();
        s.replace(end, e - end, v);
        m.note += "value@" + std::to_string(end) + "=" + v + " ";
      } else {
        const std::string v = m.odd_number();
        s.insert(at, " " + v + ",");
        m.note += "insvalue@" + std::to_string(at) + "=" + v + " ";
      }
      break;
    }
    default: {  // a structural character dropped or doubled
      std::vector<size_t> pos;
      for (size_t i = 0; i < s.size(); ++i)
        if (std::strchr("{}[],:\"", s[i])) pos.push_back(i);
      if (pos.empty()) { m.flip_bits(s); break; }
      const size_t at = pos[m.below(pos.size())];
      if (m.chance(0.5)) s.erase(at, 1), m.note += "drop@" + std::to_string(at) + " ";
      else s.insert(at, 1, s[at]), m.note += "double@" + std::to_string(at) + " ";
      break;
    }
  }
}

// Outcome counts of one parser's campaign.
struct Tally {
  int cases = 0, accepted = 0, rejected = 0;
  int control_chars = 0;  // messages that echo control characters of the input (a '\r' of a flipped bit)
  double slowest_ms = 0;
  std::vector<std::string> problems;  // cases that broke the contract
};

// Is `msg` one line naming `path` (the path itself, or its directory and file name)?
inline bool names_file(const std::string& msg, const std::string& path) {
  if (msg.find(path) != std::string::npos) return true;
  const std::filesystem::path p(path);
  return msg.find(p.parent_path().string()) != std::string::npos && msg.find(p.filename().string()) != std::string::npos;
}

// Runs `parse(path)` on `bytes` written to `path`, checking the contract, and counts the outcome.
// `label` identifies the case (parser, seed, mutations) for messages and the crash handler.
inline void run_case(Tally& t, const std::string& label, const std::string& path, const std::string& bytes,
                     const std::function<void(const std::string&)>& parse,
                     const std::function<bool(const std::string&)>& names = {}) {
  install_handlers();
  std::snprintf(g_case, sizeof g_case, "%s", label.c_str());
  write_bytes(path, bytes);
  ++t.cases;
  const auto t0 = std::chrono::steady_clock::now();
  alarm(kCaseSeconds);
  try {
    parse(path);
    ++t.accepted;
  } catch (const lopa::Error& e) {
    ++t.rejected;
    const std::string msg = e.what();
    if (std::any_of(msg.begin(), msg.end(), [](char c) { return c != '\n' && (unsigned char)c < 0x20; })) ++t.control_chars;
    if (msg.find('\n') != std::string::npos)
      t.problems.push_back(label + ": message is not one line: " + msg);
    else if (!(names ? names(msg) : names_file(msg, path)))
      t.problems.push_back(label + ": message does not name the file " + path + ": " + msg);
  } catch (const std::exception& e) {
    t.problems.push_back(label + ": not a lopa::Error (" + typeid(e).name() + "): " + e.what());
  } catch (...) {
    t.problems.push_back(label + ": unknown exception type");
  }
  alarm(0);
  // LOPA_FUZZ_SAVE=DIR keeps the input of every case that broke the contract, for replaying it.
  if (const char* keep = std::getenv("LOPA_FUZZ_SAVE"); keep && !t.problems.empty() && t.problems.back().rfind(label, 0) == 0)
    write_bytes(std::string(keep) + "/" + std::to_string(t.cases) + "-" + std::filesystem::path(path).filename().string(),
                bytes);
  t.slowest_ms = std::max(t.slowest_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  g_case[0] = '\0';
}

// Prints the campaign's figures and fails the test with the first problems.
inline void report(const char* parser, uint64_t seed, const Tally& t) {
  std::printf("[fuzz] %s: seed %llu, %d cases: %d accepted, %d rejected with a one-line error naming the file, "
              "%zu problems; slowest case %.1f ms; %d messages echo control characters of the input\n",
              parser, (unsigned long long)seed, t.cases, t.accepted, t.rejected, t.problems.size(), t.slowest_ms,
              t.control_chars);
  for (size_t i = 0; i < t.problems.size() && i < 20; ++i) ADD_FAILURE() << t.problems[i];
}

}  // namespace lopa::fuzz
