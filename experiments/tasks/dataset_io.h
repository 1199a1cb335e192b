// Line readers for the released data files: GLUE TSVs (split on tabs only — the files are not
// CSV-quoted — with the UTF-8 BOM of MRPC's header stripped) and JSONL. Errors name file and line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lopa {

// The non-empty-terminated lines of a text file, '\n'-separated, a trailing '\r' removed, the UTF-8
// BOM at the start of the file removed. A final newline does not make an extra empty line.
struct TextLines {
  std::vector<std::string> lines;
};
TextLines read_text_lines(const std::string& path);

// A loader's malformed rows skipped under skip_bad_rows: how many, and the first one's line and
// reason, so that an empty result can name them.
struct SkippedRows {
  int64_t count = 0;
  int64_t first_line = 0;
  std::string first_reason;
  void add(int64_t line, const std::string& reason) {
    if (count++ == 0) first_line = line, first_reason = reason;
  }
};
// Throws "FILE:LINE: no examples for WHAT ..." for a split that came out empty: LINE is the first
// skipped row when rows were skipped, else `last_line`.
[[noreturn]] void fail_no_examples(const std::string& path, const std::string& what, int64_t last_line,
                                   const SkippedRows& skipped);

struct TsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // every row has header.size() fields
  std::vector<int64_t> line_numbers;           // 1-based line of each row in the file (header = line 1)
  int64_t skipped = 0;                         // rows with the wrong field count or invalid UTF-8 skipped
  SkippedRows skipped_rows;                    // the same rows, with the first one's line and reason
  int64_t last_line = 0;                       // lines in the file
};
// Reads a TSV with a header line. A row whose field count differs from the header's, or that is not
// valid UTF-8, is an error "FILE:LINE: ..." unless skip_bad_rows, which skips and counts it (a header
// that is not valid UTF-8 is always an error).
TsvTable read_tsv(const std::string& path, bool skip_bad_rows);

// Column index of `name` in the header, or an error naming the file and the columns it has.
size_t tsv_column(const TsvTable& t, const std::string& path, const std::string& name);
// Column index of `name`, or -1.
int64_t tsv_find_column(const TsvTable& t, const std::string& name);

bool file_exists(const std::string& path);
std::string join_path(const std::string& a, const std::string& b);

}  // namespace lopa
