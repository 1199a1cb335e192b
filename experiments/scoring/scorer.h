// Scorer: turns predictions made by any tool into the paper's metrics, the way the official harnesses
// score them. Used by `lopa score` and by the trainer's evaluation.
//   GLUE      {"idx", "prediction"} (label as in the TSV)   -> accuracy (+ f1 for MRPC/QQP)
//   MBPP      {"task_id", "completion"} (continues the prompt, as mxeval runs it; several lines per
//             task_id = several samples)                     -> pass_at_1, pass_at_k (k <= samples)
//   CruxEval  {"id", "prediction"} (output expression for -O, input expression for -I; official
//             post-processing applied, see cruxeval.h)       -> pass_at_1, pass_at_k
// Examples without a prediction count as wrong (and are reported as "missing"); a prediction for an
// id that is not in the split is an error.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "experiments/scoring/sandbox.h"
#include "experiments/tasks/task.h"

namespace lopa {

struct Prediction {
  std::string id;    // idx / task_id / id
  std::string text;  // prediction / completion
  int64_t line = 0;  // 1-based line in its file (0 when made in memory)
};

// Reads a predictions JSONL for `task` (key names by family, see above); blank lines are skipped; a
// line that is not such an object is a lopa::Error "FILE:LINE: ...".
std::vector<Prediction> read_predictions(const std::string& task, const std::string& path);

// One line of predictions.jsonl in the format read_predictions reads (GLUE idx written as a number
// when it is one), without the newline.
std::string prediction_line(const std::string& task, const std::string& id, const std::string& text);

struct ScoreOptions {
  SandboxOptions sandbox;                      // limits, workers, unsafe_exec
  bool mbpp_postprocess = false;               // apply mbpp_postprocess to raw completions first
  std::vector<int64_t> ks = {1, 5, 10, 100};   // pass@k reported for every k <= samples per problem
};

using Metrics = std::map<std::string, double>;

// Per-sample outcome of the code tasks (for logs, --details and tests), in prediction order.
struct SampleOutcome {
  std::string id;
  bool passed = false;
  std::string status;         // sandbox status (ExecResult::status), or "rejected" (the official harness
                              // refuses it unrun)
  int exit_code = -1;         // as in ExecResult (-1 when it did not exit normally or did not run)
  int term_signal = 0;
  double wall_seconds = 0;    // from the program's start (sandbox set-up excluded)
  double cpu_seconds = 0;
  double setup_seconds = 0;
  std::string stderr_head;    // the first lines of its stderr (kDetailStderrLines at most)
};

inline constexpr int kDetailStderrLines = 20;

// Scores `predictions` against `examples` (one split of `task`). Code tasks run in `sandbox` when
// given, else in a Sandbox made from opts.sandbox. `outcomes`, when given, receives per-sample results.
// Code metrics count every sample in exactly one of passed_samples, failed (ran and failed, or stopped
// by a limit that does not depend on the machine's load: CPU time, output size; or rejected unrun),
// timeouts (stopped by the wall clock while waiting rather than computing) and errors (the sandbox
// could not run it), so a machine too loaded to run the programs shows as timeouts or errors, wrong
// code as failed.
Metrics score_predictions(const std::string& task, const std::vector<Example>& examples,
                          const std::vector<Prediction>& predictions, const ScoreOptions& opts = {},
                          const Sandbox* sandbox = nullptr, std::vector<SampleOutcome>* outcomes = nullptr);

// Per-sample results as JSON lines, one per prediction in order: {"id", "status", "passed",
// "exit_code" (null unless it exited), "signal" (when killed), "wall_seconds", "cpu_seconds",
// "setup_seconds", "stderr" (its first lines)}; written to a temporary, then renamed over `path`.
void write_score_details(const std::string& path, const std::vector<SampleOutcome>& outcomes);

// Metrics as one JSON object line (keys sorted; integers printed without a fraction).
std::string metrics_json(const Metrics& m);

}  // namespace lopa
