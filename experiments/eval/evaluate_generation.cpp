#include "experiments/eval/evaluate_generation.h"

#include <cmath>

#include "experiments/eval/adapter_generation.h"
#include "experiments/eval/prompt_method.h"
#include "experiments/scoring/scorer.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/templates.h"
#include "lopa/method.h"
#include "runtime/base/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

bool is_generation_task(const std::string& task) {
  const auto family = task_info(task).family;
  return family == TaskFamily::Mbpp || family == TaskFamily::CruxEval;
}

EvalResult evaluate_generation(const std::string& task, const std::vector<Example>& examples,
                               const std::vector<TrainItem>& items, Method& method, CausalLM& fm,
                               const at::Tensor& enc, const Tokenizer& tok, int64_t batch_size, int64_t pad_id,
                               int64_t max_new_tokens, std::vector<SampleOutcome>* outcomes) {
  at::NoGradGuard no_grad;
  const bool was_training = method.training();
  method.set_training(false);
  GenerationConfig gc;
  gc.max_new_tokens = max_new_tokens;
  gc.pad_token_id = pad_id;
  if (fm.config().eos_token_ids.empty() && tok.eos_id()) gc.eos_token_ids = {*tok.eos_id()};
  const auto stops = stop_sequences(task);

  EvalResult out;
  std::vector<Prediction> preds;
  double nll = 0;
  int64_t n_ref = 0;
  for (size_t b0 = 0; b0 < items.size(); b0 += batch_size) {
    const size_t b1 = std::min(items.size(), b0 + static_cast<size_t>(batch_size));
    std::vector<int64_t> idx;
    std::vector<std::vector<int64_t>> prompts;
    for (size_t k = b0; k < b1; ++k) idx.push_back(static_cast<int64_t>(k)), prompts.push_back(items[k].prompt);
    at::Tensor e;
    if (method.needs_encoder()) e = enc.index_select(0, at::tensor(idx, at::kLong).to(enc.device()));
    const auto generated = generate_with_method(method, fm, prompts, e, gc);
    for (size_t k = b0; k < b1; ++k) {
      auto text = tok.decode(generated[k - b0], /*skip_special_tokens=*/true);
      // The first stop sequence ends the answer (the official harnesses stop generation there).
      size_t cut = text.size();
      for (const auto& s : stops) cut = std::min(cut, text.find(s));
      text.resize(cut);
      out.predictions.emplace_back(items[k].id, text);
      preds.push_back({items[k].id, text, 0});
    }
    // Teacher-forced NLL of the reference: a dev loss comparable across methods and steps.
    auto batch = scoring_batch(items, idx, pad_id);
    at::Tensor labels;
    at::Tensor e_rows;
    if (method.needs_encoder()) e_rows = enc.index_select(0, at::tensor(batch.item, at::kLong).to(enc.device()));
    auto hidden = method_forward(method, fm, batch, e_rows, labels, {}, /*labelled_tail=*/true);
    auto seq = sequence_log_likelihood(fm, hidden, labels);
    auto acc = seq.accessor<double, 1>();
    for (size_t r = 0; r < batch.item.size(); ++r) {
      const auto& it = items[batch.item[r]];
      if (batch.candidate[r] != it.gold || it.gold < 0) continue;
      nll += -acc[r] / static_cast<double>(it.targets[it.gold].size());
      ++n_ref;
    }
  }
  method.set_training(was_training);
  ScoreOptions so;
  so.mbpp_postprocess = true;  // keep the function body, as LoPA's cleanup_mbpp_predictions.py does
  so.ks = {1};
  out.metrics = score_predictions(task, examples, preds, so, nullptr, outcomes);
  if (n_ref) out.metrics["loss"] = nll / n_ref;
  return out;
}

}  // namespace lopa
