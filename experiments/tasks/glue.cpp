#include "experiments/tasks/glue.h"

#include <utility>

#include "experiments/tasks/dataset_io.h"
#include "runtime/base/error.h"

namespace lopa {

namespace {

struct GlueColumns {
  std::vector<std::pair<std::string, std::string>> fields;  // template field <- TSV column
  std::string label;                                       // label column (absent on test splits)
  std::string id;                                          // id column ("" = row number)
};

GlueColumns glue_columns(const std::string& task) {
  if (task == "sst2") return {{{"sentence", "sentence"}}, "label", "index"};
  if (task == "rte") return {{{"sentence1", "sentence1"}, {"sentence2", "sentence2"}}, "label", "index"};
  if (task == "mrpc") return {{{"sentence1", "#1 String"}, {"sentence2", "#2 String"}}, "Quality", "index"};
  if (task == "qnli") return {{{"question", "question"}, {"sentence", "sentence"}}, "label", "index"};
  if (task == "qqp") return {{{"question1", "question1"}, {"question2", "question2"}}, "is_duplicate", "id"};
  if (task == "mnli")
    return {{{"sentence1", "sentence1"}, {"sentence2", "sentence2"}, {"genre", "genre"}}, "gold_label", "index"};
  fail("glue: unknown GLUE task '", task, "'");
}

}  // namespace

std::string glue_file(const TaskInfo& info, const std::string& data_dir, const std::string& split) {
  return join_path(join_path(data_dir, info.dir), split + ".tsv");
}

Dataset load_glue(const TaskInfo& info, const std::string& data_dir, const std::string& split,
                  const LoadOptions& opts) {
  const std::string path = glue_file(info, data_dir, split);
  const GlueColumns cols = glue_columns(info.name);
  TsvTable t = read_tsv(path, opts.skip_bad_rows);

  std::vector<std::pair<std::string, size_t>> field_idx;
  for (const auto& [field, column] : cols.fields) field_idx.emplace_back(field, tsv_column(t, path, column));
  const int64_t id_col = tsv_find_column(t, cols.id);
  const int64_t label_col = tsv_find_column(t, cols.label);
  const bool labeled = split.rfind("test", 0) != 0;
  if (labeled) tsv_column(t, path, cols.label);  // a labeled split without its label column is an error

  Dataset ds;
  ds.task = info.name;
  ds.split = split;
  ds.files = {path};
  ds.skipped_rows = t.skipped;
  SkippedRows skipped = t.skipped_rows;
  ds.examples.reserve(t.rows.size());
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    const int64_t line = t.line_numbers[r];
    Example ex;
    ex.row = line - 2;
    ex.id = id_col >= 0 ? row[id_col] : std::to_string(ex.row);
    for (const auto& [field, i] : field_idx) ex.fields[field] = row[i];
    if (labeled && label_col >= 0) {
      ex.label = row[label_col];
      for (size_t k = 0; k < info.labels.size(); ++k)
        if (info.labels[k] == ex.label) ex.label_index = (int64_t)k;
      if (ex.label_index < 0) {
        if (opts.skip_bad_rows) {
          ++ds.skipped_rows;
          skipped.add(line, "label '" + ex.label + "'");
          continue;
        }
        std::string valid;
        for (const auto& l : info.labels) valid += (valid.empty() ? "" : ", ") + l;
        fail(path, ":", line, ": malformed row: label '", ex.label, "' is not one of ", valid,
             " (use skip-bad-rows to skip such rows)");
      }
      ex.fields["label"] = ex.label;
    }
    if (id_col >= 0 && ex.id.empty()) {
      if (opts.skip_bad_rows) {
        ++ds.skipped_rows;
        skipped.add(line, "empty " + cols.id);
        continue;
      }
      fail(path, ":", line, ": malformed row: empty ", cols.id, " (use skip-bad-rows to skip such rows)");
    }
    ex.fields["idx"] = ex.id;
    ds.examples.push_back(std::move(ex));
  }
  if (ds.examples.empty()) fail_no_examples(path, info.name + " " + split, t.last_line, skipped);
  return ds;
}

}  // namespace lopa
