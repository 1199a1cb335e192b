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

#include "experiments/sandbox.h"
#include "experiments/task.h"

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

// Per-sample outcome of the code tasks (for logs and tests), in prediction order.
struct SampleOutcome {
  std::string id;
  bool passed = false;
  std::string status;  // sandbox status, or "rejected" (the official harness refuses it unrun)
};

// Scores `predictions` against `examples` (one split of `task`). Code tasks run in `sandbox` when
// given, else in a Sandbox made from opts.sandbox. `outcomes`, when given, receives per-sample results.
Metrics score_predictions(const std::string& task, const std::vector<Example>& examples,
                          const std::vector<Prediction>& predictions, const ScoreOptions& opts = {},
                          const Sandbox* sandbox = nullptr, std::vector<SampleOutcome>* outcomes = nullptr);

// Metrics as one JSON object line (keys sorted; integers printed without a fraction).
std::string metrics_json(const Metrics& m);

}  // namespace lopa
