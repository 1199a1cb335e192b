#include "experiments/tasks/dataset_io.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "runtime/base/error.h"
#include "runtime/tokenizer/unicode.h"

namespace lopa {

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

TextLines read_text_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LOPA_CHECK(in, path, ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
      (unsigned char)text[2] == 0xBF)
    text.erase(0, 3);
  TextLines out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.lines.push_back(std::move(line));
    start = nl + 1;
  }
  return out;
}

void fail_no_examples(const std::string& path, const std::string& what, int64_t last_line, const SkippedRows& skipped) {
  if (skipped.count > 0)
    fail(path, ":", skipped.first_line, ": no examples for ", what, ": all ", skipped.count,
         " rows were malformed and skipped, the first on this line (", skipped.first_reason, ")");
  fail(path, ":", std::max<int64_t>(last_line, 1), ": no examples for ", what, " in the file");
}

static std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> f;
  size_t start = 0;
  for (;;) {
    size_t t = line.find('\t', start);
    if (t == std::string::npos) {
      f.push_back(line.substr(start));
      return f;
    }
    f.push_back(line.substr(start, t - start));
    start = t + 1;
  }
}

TsvTable read_tsv(const std::string& path, bool skip_bad_rows) {
  TextLines tl = read_text_lines(path);
  LOPA_CHECK(!tl.lines.empty(), path, ":1: empty file (expected a header line)");
  const size_t bad_header = unicode::first_invalid_utf8(tl.lines[0]);
  LOPA_CHECK(bad_header == std::string::npos, path, ":1: invalid UTF-8 at byte ", bad_header + 1, " of the header");
  TsvTable t;
  t.header = split_tabs(tl.lines[0]);
  t.last_line = (int64_t)tl.lines.size();
  for (size_t i = 1; i < tl.lines.size(); ++i) {
    // The text goes to the tokenizer, which would reject it later without naming the file.
    const size_t bad = unicode::first_invalid_utf8(tl.lines[i]);
    if (bad != std::string::npos) {
      if (skip_bad_rows) {
        ++t.skipped;
        t.skipped_rows.add((int64_t)i + 1, "invalid UTF-8");
        continue;
      }
      fail(path, ":", i + 1, ": malformed row: invalid UTF-8 at byte ", bad + 1, " (use skip-bad-rows to skip such rows)");
    }
    auto f = split_tabs(tl.lines[i]);
    if (f.size() != t.header.size()) {
      if (skip_bad_rows) {
        ++t.skipped;
        t.skipped_rows.add((int64_t)i + 1, std::to_string(f.size()) + " fields, the header has " +
                                               std::to_string(t.header.size()));
        continue;
      }
      fail(path, ":", i + 1, ": malformed row: ", f.size(), " tab-separated fields, the header has ",
           t.header.size(), " (use skip-bad-rows to skip such rows)");
    }
    t.rows.push_back(std::move(f));
    t.line_numbers.push_back((int64_t)i + 1);
  }
  return t;
}

int64_t tsv_find_column(const TsvTable& t, const std::string& name) {
  for (size_t i = 0; i < t.header.size(); ++i)
    if (t.header[i] == name) return (int64_t)i;
  return -1;
}

size_t tsv_column(const TsvTable& t, const std::string& path, const std::string& name) {
  int64_t i = tsv_find_column(t, name);
  if (i < 0) {
    std::string cols;
    for (const auto& h : t.header) cols += (cols.empty() ? "" : ", ") + h;
    fail(path, ":1: header has no column '", name, "' (columns: ", cols, ")");
  }
  return (size_t)i;
}

}  // namespace lopa
