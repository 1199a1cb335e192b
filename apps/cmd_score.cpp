// lopa score: scores predictions made by any tool (lopa eval, or another) against a task's split and
// prints the metrics as one JSON object (code tasks: passed_samples, failed, timeouts, errors).
#include <iostream>

#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/scoring/scorer.h"
#include "experiments/tasks/task.h"
#include "runtime/base/error.h"

namespace lopa::app {

int cmd_score(const Args& args) {
  po::options_description desc("score");
  desc.add_options()
      ("task", po::value<std::string>()->required(), "sst2 | rte | mrpc | qnli | qqp | mnli | mbpp | cruxeval-i | cruxeval-o")
      ("data-dir", po::value<std::string>()->required(), "data root laid out like ../shared/data")
      ("predictions", po::value<std::string>()->required(),
       "JSONL: MBPP {\"task_id\",\"completion\"}, CruxEval {\"id\",\"prediction\"}, GLUE {\"idx\",\"prediction\"}")
      ("split", po::value<std::string>(), "split to score against (default: the one the paper reports: "
       "dev for GLUE, dev_matched for MNLI, test for MBPP/CruxEval)")
      ("workers", po::value<int>()->default_value(0), "programs run in parallel (0 = number of cores)")
      ("timeout", po::value<double>()->default_value(10.0),
       "wall-clock seconds per program from its start (sandbox set-up excluded); one still computing then "
       "goes on up to its CPU-time limit")
      ("unsafe-exec", po::bool_switch(), "run code without a sandbox when bubblewrap is unusable")
      ("skip-bad-rows", po::bool_switch(), "skip (and count) malformed data rows instead of failing")
      ("postprocess", po::bool_switch(), "MBPP: cut raw completions at stop sequences / the function body first")
      ("details", po::value<std::string>(), "code tasks: write per-sample results to FILE (JSON lines: id, status, "
       "exit_code, wall_seconds, cpu_seconds, first lines of stderr)");
  auto parsed = parse_options("score", "--task TASK --data-dir DIR --predictions FILE [--split NAME] [--details FILE]",
                              desc, args);
  if (parsed.help) return 0;
  const auto& vm = parsed.vm;

  const std::string task = vm["task"].as<std::string>();
  const TaskInfo& info = task_info(task);
  const std::string split = vm.count("split") ? vm["split"].as<std::string>() : info.eval_split;
  LoadOptions lo;
  lo.skip_bad_rows = vm["skip-bad-rows"].as<bool>();
  Dataset ds = load_task(task, vm["data-dir"].as<std::string>(), split, lo);
  if (ds.skipped_rows > 0) std::cerr << "score: skipped " << ds.skipped_rows << " malformed data rows" << std::endl;
  auto preds = read_predictions(task, vm["predictions"].as<std::string>());

  ScoreOptions so;
  so.sandbox.workers = vm["workers"].as<int>();
  so.sandbox.unsafe_exec = vm["unsafe-exec"].as<bool>();
  so.sandbox.limits.wall_seconds = vm["timeout"].as<double>();
  LOPA_CHECK(so.sandbox.limits.wall_seconds > 0, "lopa score: --timeout must be positive");
  so.mbpp_postprocess = vm["postprocess"].as<bool>();
  const bool details = vm.count("details") > 0;
  LOPA_CHECK(!details || info.family == TaskFamily::Mbpp || info.family == TaskFamily::CruxEval,
             "lopa score: --details is for the code tasks (mbpp, cruxeval-i, cruxeval-o)");
  std::vector<SampleOutcome> outcomes;
  Metrics m = score_predictions(task, ds.examples, preds, so, nullptr, details ? &outcomes : nullptr);
  if (details) write_score_details(vm["details"].as<std::string>(), outcomes);
  m["skipped_rows"] = (double)ds.skipped_rows;
  std::cout << metrics_json(m) << std::endl;
  return 0;
}

}  // namespace lopa::app
