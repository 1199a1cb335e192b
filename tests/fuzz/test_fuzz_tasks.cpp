// Fuzzing the released data files as the trainer loads them (load_task, strict and with
// skip-bad-rows, then every example's prompt rendered): GLUE TSVs (SST-2 and RTE heads of the
// fixtures), MBPP and CruxEval JSONL (a few rows of each). A data error must name the file and the
// line ("FILE:LINE"). Seeds and case counts are in the test names and printed.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>

#include "experiments/tasks/task.h"
#include "experiments/tasks/templates.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lopa;
using namespace lopa::fuzz;

namespace {

const std::string kData = std::string(LOPA_SHARED_DIR) + "/data";

// The first `n` lines of a file.
std::string head_lines(const std::string& path, int n) {
  const std::string all = read_bytes(path);
  size_t end = 0;
  for (int i = 0; i < n; ++i) {
    const size_t nl = all.find('\n', end);
    if (nl == std::string::npos) return all;
    end = nl + 1;
  }
  return all.substr(0, end);
}

// Loads the split as `lopa train` does and renders every prompt.
void load(const std::string& task, const std::string& dir, const std::string& split, bool skip) {
  LoadOptions o;
  o.skip_bad_rows = skip;
  Dataset d = load_task(task, dir, split, o);
  for (const auto& ex : d.examples) (void)render_template(default_prompt_template(task), ex.fields);
}

// "FILE:LINE" (a data error) or, for a file that is not there or not a file, the file's name.
bool names_file_and_line(const std::string& msg, const std::string& path) {
  return msg.find(path + ":") != std::string::npos &&
         std::regex_search(msg.substr(msg.find(path + ":") + path.size() + 1), std::regex("^[0-9]+"));
}

// A text mutation of line-oriented data: line edits, bit flips, truncation, invalid UTF-8, odd
// numbers, tabs, NUL / CR / BOM bytes, a long line, and (JSONL) JSON mutations of one row.
void mutate_lines(std::string& s, Mutator& m, bool jsonl) {
  switch (m.below(jsonl ? 10 : 9)) {
    case 0: case 1: m.edit_lines(s); break;
    case 2: m.flip_bits(s); break;
    case 3: m.truncate(s); break;
    case 4: m.insert_invalid_utf8(s); break;
    case 5: if (!m.replace_number(s)) m.flip_bits(s); break;
    case 6: {
      static const char* bytes[] = {"\t", "\t\t", "", "\r", "\r\n", "\xef\xbb\xbf", "\"", "\\"};
      const size_t k = m.below(8);
      m.insert(s, k == 2 ? std::string(1, '\0') : std::string(bytes[k]), "byte");
      break;
    }
    case 7: m.insert(s, std::string(200000 + m.below(100000), 'x'), "longrun"); break;
    case 8: s.clear(); m.note += "empty "; break;
    default: {  // one row's JSON
      std::vector<size_t> starts = {0};
      for (size_t i = 0; i + 1 < s.size(); ++i) if (s[i] == '\n') starts.push_back(i + 1);
      const size_t k = m.below(starts.size());
      const size_t b = starts[k], e = s.find('\n', b);
      std::string row = s.substr(b, e == std::string::npos ? std::string::npos : e - b);
      mutate_json(row, m, 200);
      s.replace(b, (e == std::string::npos ? s.size() : e) - b, row);
      m.note += "row" + std::to_string(k) + " ";
      break;
    }
  }
}

struct Campaign {
  const char* name;
  const char* task;
  const char* split;
  std::string rel;    // the file under the data root
  std::string base;   // its valid content
  bool jsonl;
};

void run_campaign(const Campaign& c, uint64_t seed, int cases) {
  const std::string dir = temp_dir(c.name);
  const std::string path = dir + "/" + c.rel;
  write_bytes(path, c.base);
  ASSERT_NO_THROW(load(c.task, dir, c.split, false)) << c.name << ": the unmutated head loads";
  Tally t;
  cases *= case_scale();
  for (int i = 0; i < cases; ++i) {
    Mutator m(seed * 1000003u + (uint64_t)i);
    std::string s = c.base;
    const int n = 1 + (int)m.below(3);
    for (int k = 0; k < n; ++k) mutate_lines(s, m, c.jsonl);
    const bool skip = m.chance(0.3);
    run_case(t,
             std::string(c.name) + " seed=" + std::to_string(seed) + " case=" + std::to_string(i) +
                 (skip ? " skip-bad-rows" : "") + ": " + m.note,
             path, s, [&](const std::string&) { load(c.task, dir, c.split, skip); },
             [&](const std::string& msg) { return names_file_and_line(msg, path); });
  }
  report(c.name, seed, t);
  EXPECT_GT(t.rejected, 0);
  EXPECT_GT(t.accepted, 0);
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST(FuzzGlueTsv, Seed18004Cases300) {
  run_campaign({"glue-sst2", "sst2", "train", "glue/SST-2/train.tsv", head_lines(kData + "/glue/SST-2/train.tsv", 12), false},
               18004, 150);
  run_campaign({"glue-rte", "rte", "dev", "glue/RTE/dev.tsv", head_lines(kData + "/glue/RTE/dev.tsv", 6), false}, 180041, 150);
}

TEST(FuzzMbppJsonl, Seed18005Cases300) {
  run_campaign({"mbpp", "mbpp", "test", "mbpp/mbpp_test_release_v1.jsonl",
                head_lines(kData + "/mbpp/mbpp_test_release_v1.jsonl", 4), true},
               18005, 300);
}

TEST(FuzzCruxEvalJsonl, Seed18006Cases300) {
  run_campaign({"cruxeval", "cruxeval-o", "all", "cruxeval/cruxeval.jsonl",
                head_lines(kData + "/cruxeval/cruxeval.jsonl", 6), true},
               18006, 300);
}

// A JSONL row nested 100,000 deep (issue 18) is a malformed row, rejected at once by the JSON reader's
// depth limit, by name, with file and line.
TEST(FuzzDeepNesting, JsonlRowsNestedTooDeepAreMalformedRows) {
  for (const bool mbpp : {true, false}) {
    const std::string dir = temp_dir("deep-jsonl");
    const std::string rel = mbpp ? "mbpp/mbpp_test_release_v1.jsonl" : "cruxeval/cruxeval.jsonl";
    const std::string path = dir + "/" + rel;
    std::string rows = head_lines(kData + "/" + (mbpp ? "mbpp/mbpp_test_release_v1.jsonl" : "cruxeval/cruxeval.jsonl"), 3);
    const size_t second = rows.find('\n') + 1;
    rows.insert(second + 1, "\"zz\": " + Mutator::nested(100000, false) + ", ");
    write_bytes(path, rows);
    try {
      load(mbpp ? "mbpp" : "cruxeval-o", dir, mbpp ? "test" : "all", false);
      ADD_FAILURE() << rel << ": a row nested 100000 deep was accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ":2: malformed row: ", 0), 0u) << msg;
      EXPECT_NE(msg.find("nested deeper than"), std::string::npos) << msg;
    }
    std::filesystem::remove_all(dir);
  }
}
