#include "experiments/task.h"

#include <algorithm>

#include "experiments/cruxeval.h"
#include "experiments/dataset_io.h"
#include "experiments/glue.h"
#include "experiments/mbpp.h"
#include "runtime/base/error.h"

namespace lopa {

namespace {

const std::vector<TaskInfo>& registry() {
  static const std::vector<std::string> glue3 = {"train", "dev", "test"};
  static const std::vector<TaskInfo> tasks = {
      {"sst2", TaskFamily::Glue, "glue/SST-2", {"0", "1"}, glue3, "train", "dev", ""},
      {"rte", TaskFamily::Glue, "glue/RTE", {"entailment", "not_entailment"}, glue3, "train", "dev", ""},
      {"mrpc", TaskFamily::Glue, "glue/MRPC", {"0", "1"}, glue3, "train", "dev", "1"},
      {"qnli", TaskFamily::Glue, "glue/QNLI", {"entailment", "not_entailment"}, glue3, "train", "dev", ""},
      {"qqp", TaskFamily::Glue, "glue/QQP", {"0", "1"}, glue3, "train", "dev", "1"},
      {"mnli", TaskFamily::Glue, "glue/MNLI", {"entailment", "neutral", "contradiction"},
       {"train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched"}, "train", "dev_matched", ""},
      {"mbpp", TaskFamily::Mbpp, "mbpp", {}, {"train", "test", "all"}, "train", "test", ""},
      {"cruxeval-i", TaskFamily::CruxEval, "cruxeval", {}, {"train", "test", "all"}, "train", "test", ""},
      {"cruxeval-o", TaskFamily::CruxEval, "cruxeval", {}, {"train", "test", "all"}, "train", "test", ""},
  };
  return tasks;
}

}  // namespace

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& t : registry()) n.push_back(t.name);
    return n;
  }();
  return names;
}

const TaskInfo& task_info(const std::string& name) {
  for (const auto& t : registry())
    if (t.name == name) return t;
  std::string known;
  for (const auto& n : task_names()) known += (known.empty() ? "" : ", ") + n;
  fail("unknown task '", name, "' (tasks: ", known, ")");
}

std::string task_source_hint(const std::string& task) {
  const TaskInfo& info = task_info(task);
  const std::string glue =
      "GLUE TSVs as written by download_glue_data.py (https://gist.github.com/W4ngatang/60c2bdb54d156a41194446737ce03e2e, "
      "benchmark: https://gluebenchmark.com/tasks); ";
  if (task == "sst2") return glue + "SST-2: https://dl.fbaipublicfiles.com/glue/data/SST-2.zip";
  if (task == "rte") return glue + "RTE: https://dl.fbaipublicfiles.com/glue/data/RTE.zip";
  if (task == "qnli") return glue + "QNLI: https://dl.fbaipublicfiles.com/glue/data/QNLIv2.zip";
  if (task == "qqp") return glue + "QQP: https://dl.fbaipublicfiles.com/glue/data/QQP-clean.zip";
  if (task == "mnli") return glue + "MNLI: https://dl.fbaipublicfiles.com/glue/data/MNLI.zip";
  if (task == "mrpc")
    return glue + "MRPC: built from https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt, "
                  "msr_paraphrase_test.txt and https://dl.fbaipublicfiles.com/glue/data/mrpc_dev_ids.tsv";
  if (info.family == TaskFamily::Mbpp)
    return "MBPP in the MBXP format: https://github.com/amazon-science/mxeval (data/mbxp/mbpp_release_v1.jsonl); "
           "the 487/487 split files: https://github.com/jabhinav/Prompt-Tuning-Strikes-Back-with-LOPA (data/MBPP/)";
  return "CruxEval: https://github.com/facebookresearch/cruxeval (data/cruxeval.jsonl)";
}

std::vector<std::string> task_files(const std::string& task, const std::string& data_dir, const std::string& split) {
  const TaskInfo& info = task_info(task);
  if (std::find(info.splits.begin(), info.splits.end(), split) == info.splits.end()) {
    std::string s;
    for (const auto& x : info.splits) s += (s.empty() ? "" : ", ") + x;
    fail(task, ": unknown split '", split, "' (splits: ", s, ")");
  }
  switch (info.family) {
    case TaskFamily::Glue: return {glue_file(info, data_dir, split)};
    case TaskFamily::Mbpp: return {mbpp_file(data_dir, split)};
    case TaskFamily::CruxEval: return {cruxeval_file(data_dir)};
  }
  return {};
}

Dataset load_task(const std::string& task, const std::string& data_dir, const std::string& split,
                  const LoadOptions& opts) {
  const TaskInfo& info = task_info(task);
  std::string missing;
  for (const auto& f : task_files(task, data_dir, split))
    if (!file_exists(f)) missing += (missing.empty() ? "" : ", ") + f;
  if (!missing.empty())
    fail(task, " (", split, "): missing data file(s) ", missing, " under data-dir ", data_dir, "; published as ",
         task_source_hint(task));
  switch (info.family) {
    case TaskFamily::Glue: return load_glue(info, data_dir, split, opts);
    case TaskFamily::Mbpp: return load_mbpp(info, data_dir, split, opts);
    case TaskFamily::CruxEval: return load_cruxeval(info, data_dir, split, opts);
  }
  fail("unreachable");
}

}  // namespace lopa
