// GLUE loaders: SST-2, RTE, MRPC, QNLI, QQP, MNLI from the TSVs that download_glue_data.py writes
// (header line; fields split on tabs only; MRPC's header starts with a UTF-8 BOM; test splits have
// no label column). Column names are looked up in each file's header:
//   SST-2  [index] sentence label          RTE  index sentence1 sentence2 label
//   MRPC   Quality|index #1 ID #2 ID #1 String #2 String
//   QNLI   index question sentence label   QQP  id qid1 qid2 question1 question2 is_duplicate
//   MNLI   index promptID pairID genre sentence1_binary_parse ... sentence1 sentence2 label1 ... gold_label
#pragma once

#include <string>

#include "experiments/tasks/task.h"

namespace lopa {

// The TSV holding `split` ("train", "dev", "test"; MNLI: "dev_matched", "dev_mismatched",
// "test_matched", "test_mismatched") of a GLUE task.
std::string glue_file(const TaskInfo& info, const std::string& data_dir, const std::string& split);

// Reads one split. Template fields: SST-2 {sentence}; RTE, MRPC, MNLI {sentence1} {sentence2}
// (MNLI also {genre}); QNLI {question} {sentence}; QQP {question1} {question2}. A label outside
// info.labels is a malformed row.
Dataset load_glue(const TaskInfo& info, const std::string& data_dir, const std::string& split,
                  const LoadOptions& opts);

}  // namespace lopa
