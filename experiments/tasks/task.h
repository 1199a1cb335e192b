// Task: the paper's benchmarks (GLUE SST-2/RTE/MRPC/QNLI/QQP/MNLI, MBPP, CruxEval-I/O) as one uniform
// list of Examples, read from the files as released under a data root laid out like ../shared/data:
//   glue/<SST-2|RTE|MRPC|QNLI|QQP|MNLI>/*.tsv, mbpp/mbpp_{train,test}_release_v1.jsonl, cruxeval/cruxeval.jsonl
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lopa {

// Generated: classification tasks made by code, without data files (story-names, synth-facts); they
// train and score like GLUE (candidate targets, accuracy) and need no data directory.
enum class TaskFamily { Glue, Mbpp, CruxEval, Generated };

// One example of any task. GLUE uses id/fields/label; the code tasks also fill prompt/tests/
// entry_point/reference. `fields` holds every text a template may name as {field}.
struct Example {
  std::string id;            // GLUE: the TSV's index/id column, or the 0-based row number when the file
                             // has none (SST-2/MRPC train+dev); MBPP: task_id; CruxEval: id ("sample_N")
  int64_t row = 0;           // 0-based position in its file (data rows, header excluded)
  std::map<std::string, std::string> fields;
  std::string label;         // GLUE: label as written in the TSV ("" on unlabeled test splits);
                             // code tasks: the reference answer (same as `reference`)
  int64_t label_index = -1;  // index into TaskInfo::labels; -1 when unlabeled or a code task
  // Code tasks.
  std::string prompt;        // MBPP: the prompt a completion continues; CruxEval: the official direct prompt
  std::string tests;         // MBPP: test code defining check(candidate); CruxEval: the function's code
  std::string entry_point;   // MBPP: function name; CruxEval: "f"
  std::string reference;     // MBPP: canonical_solution; CruxEval-O: output; CruxEval-I: input
};

struct Dataset;

// How a Generated task makes its examples, an example's prompt and its candidate targets (one per
// label, in TaskInfo::labels order).
struct GeneratedTask {
  Dataset (*load)(const std::string& split);
  std::string (*prompt)(const Example& ex);
  std::vector<std::string> (*targets)(const Example& ex);
};

struct TaskInfo {
  std::string name;                 // "sst2", ..., "cruxeval-o"
  TaskFamily family;
  std::string dir;                  // folder under the data root: "glue/SST-2", "mbpp", "cruxeval"
  std::vector<std::string> labels;  // GLUE labels as written in the TSV, in label-index order
  std::vector<std::string> splits;  // every split name the loader accepts
  std::string train_split;          // "train"
  std::string eval_split;           // the split the paper reports: "dev", "dev_matched", "test"
  std::string positive_label;       // F1's positive class (MRPC, QQP: "1"); "" when F1 is not reported
  const GeneratedTask* generated = nullptr;  // set exactly for TaskFamily::Generated

  bool needs_data() const { return generated == nullptr; }
};

// Every task name, in DESIGN.md order: sst2 rte mrpc qnli qqp mnli mbpp cruxeval-i cruxeval-o, then the
// generated story-names and synth-facts.
const std::vector<std::string>& task_names();
// Throws lopa::Error naming the known tasks when `name` is not one of them.
const TaskInfo& task_info(const std::string& name);

struct LoadOptions {
  bool skip_bad_rows = false;    // skip malformed rows (and count them) instead of failing
  uint64_t cruxeval_seed = 1234; // seed of the CruxEval 400/400 split; 1234 is the recorded one (cruxeval.h)
};

struct Dataset {
  std::string task, split;
  std::vector<Example> examples;
  int64_t skipped_rows = 0;         // malformed rows skipped under skip_bad_rows
  std::vector<std::string> files;   // the files read
};

// Loads `split` of `task` from the data root (a Generated task ignores data_dir). Errors (lopa::Error, one line): unknown task or split;
// missing files (naming every missing path and where the files are published); a malformed row
// (naming file and line) unless opts.skip_bad_rows.
Dataset load_task(const std::string& task, const std::string& data_dir, const std::string& split,
                  const LoadOptions& opts = {});

// The files `load_task(task, data_dir, split)` reads, and where they are published (one line of text).
std::vector<std::string> task_files(const std::string& task, const std::string& data_dir, const std::string& split);
std::string task_source_hint(const std::string& task);

}  // namespace lopa
