#include "experiments/train/train_step.h"

#include <cmath>

#include "experiments/eval/prompt_method.h"
#include "lopa/method.h"
#include "runtime/model/autocast.h"
#include "runtime/model/causal_lm.h"
#include "runtime/distributed/process_group.h"

namespace lopa {

double micro_batch_backward(Method& method, CausalLM& fm, const TokenBatch& batch, const at::Tensor& enc,
                            double scale, at::ScalarType autocast) {
  at::Tensor loss;
  {
    AutocastGuard amp(fm.device(), autocast);  // forward only: backward replays the recorded casts
    at::Tensor labels;
    auto hidden = method_forward(method, fm, batch, enc, labels, {}, /*labelled_tail=*/true);
    loss = fm.lm_loss(hidden, labels).to(at::kFloat);
  }
  (loss * scale).backward();
  return loss.item<double>();
}

double clip_gradients(const NamedTensors& named, const Method& method, const ProcessGroup& pg, double max_norm) {
  return clip_gradients(named, [&method](const std::string& n) { return method.is_tp_sharded(n); }, pg, max_norm);
}

double clip_gradients(const NamedTensors& named, const std::function<bool(const std::string&)>& is_sharded,
                      const ProcessGroup& pg, double max_norm) {
  double sq_rep = 0, sq_shard = 0;
  for (auto& [n, p] : named) {
    if (!p.grad().defined()) continue;
    const double v = p.grad().to(at::kDouble).pow(2).sum().item<double>();
    (is_sharded(n) ? sq_shard : sq_rep) += v;
  }
  if (pg.tp_size > 1) {
    auto t = at::tensor({sq_shard}, at::kDouble);
    pg.tp->all_reduce(t, ReduceOp::Sum);
    sq_shard = t.item<double>();
  }
  const double grad_norm = std::sqrt(sq_rep + sq_shard);
  if (max_norm > 0 && grad_norm > max_norm) {
    const double s = max_norm / (grad_norm + 1e-6);
    at::NoGradGuard g;
    for (auto& [n, p] : named)
      if (p.grad().defined()) p.grad().mul_(s);
  }
  return grad_norm;
}

}  // namespace lopa
