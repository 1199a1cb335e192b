#include "experiments/tasks/mbpp.h"

#include <nlohmann/json.hpp>

#include "experiments/tasks/dataset_io.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa {

std::string mbpp_file(const std::string& data_dir, const std::string& split) {
  const std::string dir = join_path(data_dir, "mbpp");
  if (split == "train") return join_path(dir, "mbpp_train_release_v1.jsonl");
  if (split == "test") return join_path(dir, "mbpp_test_release_v1.jsonl");
  if (split == "all") return join_path(dir, "mbpp_release_v1.jsonl");
  fail("mbpp: unknown split '", split, "' (train, test, all)");
}

Dataset load_mbpp(const TaskInfo& info, const std::string& data_dir, const std::string& split,
                  const LoadOptions& opts) {
  const std::string path = mbpp_file(data_dir, split);
  TextLines tl = read_text_lines(path);
  Dataset ds;
  ds.task = info.name;
  ds.split = split;
  ds.files = {path};
  int64_t row = 0;
  SkippedRows skipped;
  for (size_t i = 0; i < tl.lines.size(); ++i) {
    const std::string& line = tl.lines[i];
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are not rows
    const int64_t lineno = (int64_t)i + 1;
    Example ex;
    std::string why;
    try {
      auto j = parse_json(line);
      LOPA_CHECK(j.is_object(), "not a JSON object");
      for (const char* k : {"task_id", "prompt", "canonical_solution", "entry_point", "test"}) {
        LOPA_CHECK(j.contains(k) && j[k].is_string(), "missing string field '", k, "'");
        ex.fields[k] = j[k].get<std::string>();
      }
      if (j.contains("description") && j["description"].is_string())
        ex.fields["description"] = j["description"].get<std::string>();
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (!why.empty()) {
      if (opts.skip_bad_rows) {
        ++ds.skipped_rows;
        skipped.add(lineno, why);
        continue;
      }
      fail(path, ":", lineno, ": malformed row: ", why, " (use skip-bad-rows to skip such rows)");
    }
    ex.id = ex.fields["task_id"];
    ex.row = row++;
    ex.prompt = ex.fields["prompt"];
    ex.tests = ex.fields["test"];
    ex.entry_point = ex.fields["entry_point"];
    ex.reference = ex.fields["canonical_solution"];
    ex.label = ex.reference;
    ds.examples.push_back(std::move(ex));
  }
  if (ds.examples.empty()) fail_no_examples(path, info.name + " " + split, (int64_t)tl.lines.size(), skipped);
  return ds;
}

const std::vector<std::string>& mbpp_stop_sequences() {
  static const std::vector<std::string> stops = {"\ndef ",  "\nclass ", "\nif ",   "\nprint(", "\n#",
                                                 "\nassert ", "\n```",  "\n\"\"\"", "\n<|/"};
  return stops;
}

std::string mbpp_postprocess(const std::string& completion) {
  size_t cut = completion.size();
  for (const auto& s : mbpp_stop_sequences()) {
    size_t p = completion.find(s);
    if (p != std::string::npos && p < cut) cut = p;
  }
  std::string c = completion.substr(0, cut);
  // Function body: everything before the first non-empty line that starts at column 0.
  size_t start = 0;
  while (start < c.size()) {
    size_t nl = c.find('\n', start);
    size_t end = nl == std::string::npos ? c.size() : nl;
    const std::string line = c.substr(start, end - start);
    const bool blank = line.find_first_not_of(" \t\r\f\v") == std::string::npos;
    if (!blank && line[0] != ' ' && line[0] != '\t') return c.substr(0, start);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return c;
}

const std::map<std::string, std::string>& mbpp_known_defects() {
  static const std::map<std::string, std::string> d = {
      // Entry point named `check`: the test's `def check(candidate)` replaces the solution.
      {"MBPP/56", "entry point 'check' is shadowed by the test's check(candidate)"},
      {"MBPP/349", "entry point 'check' is shadowed by the test's check(candidate)"},
      {"MBPP/899", "entry point 'check' is shadowed by the test's check(candidate)"},
      {"MBPP/967", "entry point 'check' is shadowed by the test's check(candidate)"},
      // Broken conversion of the solution text.
      {"MBPP/64", "canonical solution starts with a column-0 comment and 1-space indentation (IndentationError)"},
      {"MBPP/966", "canonical solution mixes 2- and 3-space indentation after a comment (IndentationError)"},
      {"MBPP/160", "the conversion renamed 'solution' to 'candidate' inside the expected string 'No candidate'"},
      // Tests that need names the solution does not provide.
      {"MBPP/367", "test uses globals root/root1/root2 that are never defined"},
      {"MBPP/927", "test uses globals root/root1/root2 that are never defined"},
      {"MBPP/601", "test uses class Pair, which the solution defines only inside the function"},
      // Solutions that ignore their arguments (the original MBPP code hard-codes the example).
      {"MBPP/607", "canonical solution hard-codes pattern 'fox' and its text instead of using the arguments"},
      {"MBPP/631", "canonical solution hard-codes text 'Python Exercises' instead of using the argument"},
      // Expected values that depend on the CPython version / set iteration order.
      {"MBPP/341", "expects tuple(set) in sorted order; CPython's set order differs for {6, ..., 11}"},
      {"MBPP/642", "expects a set of tuples built from set(sub), whose element order differs in this CPython"},
      {"MBPP/596", "expects sys.getsizeof values of an older CPython"},
  };
  return d;
}

std::string mbpp_program(const Example& ex, const std::string& completion) {
  return ex.prompt + completion + ex.tests + "\ncheck(" + ex.entry_point + ")";
}

}  // namespace lopa
