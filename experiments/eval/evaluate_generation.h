// Evaluation of a method on the code tasks (MBPP, CruxEval-I/O): greedy KV-cached generation with the
// method applied (soft prompt, prefix, LoRA/FFT weights), cut at the task's stop sequences, scored by
// executing the programs in the sandbox as the official harnesses do (pass@1). Also "loss": the mean
// per-token NLL of the reference target under teacher forcing.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "experiments/eval/batching.h"
#include "experiments/eval/evaluate.h"
#include "experiments/scoring/scorer.h"

namespace lopa {

class CausalLM;
class Method;
class Tokenizer;

bool is_generation_task(const std::string& task);

// items: from make_items (one target: the reference); encoder_embeddings N×H (undefined when the
// method needs none). Predictions are the raw generated texts cut at the first stop sequence. The
// metrics include the scorer's passed_samples / failed / timeouts / errors counts; `outcomes`, when
// given, receives each sample's sandbox result (for write_score_details).
EvalResult evaluate_generation(const std::string& task, const std::vector<Example>& examples,
                               const std::vector<TrainItem>& items, Method& method, CausalLM& fm,
                               const at::Tensor& encoder_embeddings, const Tokenizer& tok, int64_t batch_size,
                               int64_t pad_id, int64_t max_new_tokens,
                               std::vector<SampleOutcome>* outcomes = nullptr);

}  // namespace lopa
