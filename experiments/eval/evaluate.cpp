#include "experiments/eval/evaluate.h"

#include <cmath>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "experiments/eval/batching.h"
#include "experiments/eval/prompt_method.h"
#include "experiments/scoring/scorer.h"
#include "lopa/method.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"
#include "runtime/model/causal_lm.h"

namespace lopa {

EvalResult evaluate_items(const std::string& task, const std::vector<Example>& examples,
                          const std::vector<TrainItem>& items, Method& method, CausalLM& fm, const at::Tensor& enc,
                          int64_t batch_size, int64_t pad_id) {
  at::NoGradGuard no_grad;
  const bool was_training = method.training();
  method.set_training(false);
  std::vector<std::vector<double>> ll(items.size());
  for (size_t i = 0; i < items.size(); ++i) ll[i].assign(items[i].targets.size(), NAN);
  // Batches of whole items whose candidate rows add up to about batch_size, items of similar length
  // together (results are kept by item index).
  const auto order = longest_first(items);
  size_t i = 0;
  while (i < order.size()) {
    std::vector<int64_t> idx;
    int64_t rows = 0;
    while (i < order.size() &&
           (idx.empty() || rows + static_cast<int64_t>(items[order[i]].targets.size()) <= batch_size)) {
      rows += items[order[i]].targets.size();
      idx.push_back(order[i++]);
    }
    auto batch = scoring_batch(items, idx, pad_id);
    at::Tensor e;
    if (method.needs_encoder()) {
      auto rows_item = at::tensor(batch.item, at::kLong).to(enc.device());
      e = enc.index_select(0, rows_item);
    }
    at::Tensor labels;
    auto hidden = method_forward(method, fm, batch, e, labels, {}, /*labelled_tail=*/true);
    auto seq = sequence_log_likelihood(fm, hidden, labels);
    auto acc = seq.accessor<double, 1>();
    for (size_t r = 0; r < batch.item.size(); ++r) ll[batch.item[r]][batch.candidate[r]] = acc[r];
  }
  method.set_training(was_training);

  EvalResult out;
  double nll = 0;
  int64_t n_gold = 0, correct = 0;
  std::vector<Prediction> preds;
  for (size_t k = 0; k < items.size(); ++k) {
    int64_t best = 0;
    for (size_t c = 1; c < ll[k].size(); ++c)
      if (!std::isnan(ll[k][c]) && (std::isnan(ll[k][best]) || ll[k][c] > ll[k][best])) best = c;
    const auto& label = items[k].target_labels.at(best);
    out.predictions.emplace_back(items[k].id, label);
    Prediction p;
    p.id = items[k].id;
    p.text = label;
    preds.push_back(p);
    if (items[k].gold >= 0) {
      nll += -ll[k][items[k].gold] / static_cast<double>(items[k].targets[items[k].gold].size());
      ++n_gold;
      correct += best == items[k].gold;
    }
  }
  const ScoreOptions defaults;  // named: GCC 12 takes the default argument's temporary for uninitialised
  out.metrics = score_predictions(task, examples, preds, defaults);
  if (n_gold) out.metrics["loss"] = nll / n_gold;
  return out;
}

void write_predictions(const std::string& path, const std::string& task,
                       const std::vector<std::pair<std::string, std::string>>& predictions) {
  std::string text;
  for (const auto& [id, pred] : predictions) text += prediction_line(task, id, pred) + "\n";
  write_file_atomic(path, text);
}

}  // namespace lopa
