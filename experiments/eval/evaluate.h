// Evaluation of a method on classification items: each candidate target's log-likelihood under the
// FM with the method applied; the prediction is the candidate with the highest log-likelihood (never
// an invalid label). Metrics: GLUE tasks through the tasks' scorer (accuracy, F1 for MRPC/QQP),
// story-names accuracy; plus "loss", the mean per-token NLL of the gold target.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "experiments/eval/batching.h"

namespace lopa {

class CausalLM;
class Method;

struct EvalResult {
  std::map<std::string, double> metrics;
  std::vector<std::pair<std::string, std::string>> predictions;  // (id, predicted label), item order
};

// encoder_embeddings: N×H rows matching items (undefined when the method needs none).
EvalResult evaluate_items(const std::string& task, const std::vector<Example>& examples,
                          const std::vector<TrainItem>& items, Method& method, CausalLM& fm,
                          const at::Tensor& encoder_embeddings, int64_t batch_size, int64_t pad_id);

// predictions.jsonl lines in `lopa score`'s format for `task` (GLUE {"idx", "prediction"}, MBPP
// {"task_id", "completion"}, CruxEval {"id", "prediction"}); written to a temporary file, then renamed.
void write_predictions(const std::string& path, const std::string& task,
                       const std::vector<std::pair<std::string, std::string>>& predictions);

}  // namespace lopa
