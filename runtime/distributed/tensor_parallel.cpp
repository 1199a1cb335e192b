// The tensor-parallel regions as torch::autograd::Functions (forward and backward exchange over the
// tp group), and the layers built from them. Semantics as Megatron-LM core/tensor_parallel
// (mappings.py, layers.py, cross_entropy.py); written for LibTorch, without sequence parallelism.
#include "runtime/distributed/tensor_parallel.h"

#include <torch/csrc/autograd/custom_function.h>

#include "runtime/base/error.h"
#include "runtime/base/linear.h"

namespace lopa::tp {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The group rides in the context as an integer: IValue holds no raw pointers. The caller keeps the
// group alive (the process group outlives every graph built on it).
void save_group(AutogradContext* ctx, Communicator* g) {
  ctx->saved_data["group"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(g));
}
Communicator& group_of(AutogradContext* ctx) {
  return *reinterpret_cast<Communicator*>(static_cast<intptr_t>(ctx->saved_data["group"].toInt()));
}

at::Tensor reduced_copy(const at::Tensor& x, Communicator& g) {
  at::Tensor y = x.clone(at::MemoryFormat::Contiguous);
  g.all_reduce(y, ReduceOp::Sum);
  return y;
}

at::Tensor last_dim_slice(const at::Tensor& x, Communicator& g) {
  const int64_t n = x.size(-1);
  LOPA_CHECK(n % g.size() == 0, "scatter_to_region: last dim ", n, " does not split over ", g.size(), " ranks");
  const int64_t c = n / g.size();
  return x.narrow(-1, g.rank() * c, c).contiguous();
}

struct CopyToRegion : torch::autograd::Function<CopyToRegion> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* g) {
    save_group(ctx, g);
    return x;  // LibTorch wraps an input returned unchanged as a view, with this node as grad_fn
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {reduced_copy(grads[0], group_of(ctx)), at::Tensor()};
  }
};

struct ReduceFromRegion : torch::autograd::Function<ReduceFromRegion> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* g) {
    return reduced_copy(x, *g);
  }
  static variable_list backward(AutogradContext*, variable_list grads) { return {grads[0], at::Tensor()}; }
};

struct GatherFromRegion : torch::autograd::Function<GatherFromRegion> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* g) {
    save_group(ctx, g);
    return g->all_gather(x, -1);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {last_dim_slice(grads[0], group_of(ctx)), at::Tensor()};
  }
};

struct ScatterToRegion : torch::autograd::Function<ScatterToRegion> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* g) {
    save_group(ctx, g);
    return last_dim_slice(x, *g);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {group_of(ctx).all_gather(grads[0], -1), at::Tensor()};
  }
};

// Per-target cross-entropy over a vocabulary split across the group (Megatron's
// _VocabParallelCrossEntropy): global max by all-reduce(max), then the target logit and Σ exp by one
// all-reduce(sum) of both; the backward is softmax − onehot on the local slice, with no exchange.
struct VocabParallelCrossEntropy : torch::autograd::Function<VocabParallelCrossEntropy> {
  // logits: [N, Vl] (any float dtype), targets: [N] int64 → loss [N] f32.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits_shard, const at::Tensor& targets,
                            int64_t vocab_start, int64_t ignore_index, Communicator* g) {
    at::Tensor logits = logits_shard.to(at::kFloat);
    const int64_t vl = logits.size(-1);
    at::Tensor max = std::get<0>(logits.max(-1));  // [N]
    g->all_reduce(max, ReduceOp::Max);
    logits = logits - max.unsqueeze(-1);  // a new tensor: never modifies the caller's logits

    const at::Tensor valid = targets.ne(ignore_index);                                             // [N]
    const at::Tensor here = valid.logical_and(targets.ge(vocab_start)).logical_and(targets.lt(vocab_start + vl));
    const at::Tensor local = (targets - vocab_start).masked_fill(here.logical_not(), 0);            // [N]
    at::Tensor target_logit = logits.gather(-1, local.unsqueeze(-1)).squeeze(-1).masked_fill(here.logical_not(), 0);

    at::Tensor exp = logits.exp_();  // [N, Vl], reused as the softmax below
    at::Tensor both = at::stack({target_logit, exp.sum(-1)});  // [2, N]
    g->all_reduce(both, ReduceOp::Sum);
    target_logit = both[0];
    const at::Tensor sum_exp = both[1];

    const at::Tensor loss = (sum_exp.log() - target_logit).masked_fill(valid.logical_not(), 0);
    exp.div_(sum_exp.unsqueeze(-1));
    ctx->save_for_backward({exp, local, here, valid});
    ctx->saved_data["dtype"] = static_cast<int64_t>(logits_shard.scalar_type());
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &softmax = saved[0], &local = saved[1], &here = saved[2], &valid = saved[3];
    // d loss_i / d logit_ij = softmax_ij − [j == target_i]; rows of ignored targets get zero.
    at::Tensor grad = softmax.clone();
    grad.scatter_add_(-1, local.unsqueeze(-1), here.to(at::kFloat).neg().unsqueeze(-1));
    grad.mul_((grads[0].to(at::kFloat) * valid.to(at::kFloat)).unsqueeze(-1));
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {grad.to(dtype), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor copy_to_region(const at::Tensor& x, Communicator& g) {
  if (g.size() == 1) return x;
  return CopyToRegion::apply(x, &g);
}

at::Tensor reduce_from_region(const at::Tensor& x, Communicator& g) {
  if (g.size() == 1) return x;
  return ReduceFromRegion::apply(x, &g);
}

at::Tensor gather_from_region(const at::Tensor& x, Communicator& g) {
  if (g.size() == 1) return x;
  return GatherFromRegion::apply(x, &g);
}

at::Tensor scatter_to_region(const at::Tensor& x, Communicator& g) {
  if (g.size() == 1) return x;
  return ScatterToRegion::apply(x, &g);
}

at::Tensor column_parallel_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, Communicator& g,
                                  bool gather_output) {
  LOPA_CHECK(x.size(-1) == w.size(1), "column_parallel_linear: input features ", x.size(-1),
             " do not match the weight shard's ", w.size(1));
  const at::Tensor y = lopa::linear(copy_to_region(x, g), w, b);
  return gather_output ? gather_from_region(y, g) : y;
}

at::Tensor row_parallel_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, Communicator& g) {
  LOPA_CHECK(x.size(-1) == w.size(1), "row_parallel_linear: input features ", x.size(-1),
             " do not match the weight shard's ", w.size(1));
  at::Tensor y = reduce_from_region(lopa::linear(x, w), g);
  return b.defined() ? y + b : y;
}

at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& w, int64_t vocab_start, Communicator& g) {
  if (g.size() == 1 && vocab_start == 0) return at::embedding(w, ids);
  const int64_t n = w.size(0);
  const at::Tensor outside = ids.lt(vocab_start).logical_or(ids.ge(vocab_start + n));  // [*]
  const at::Tensor local = (ids - vocab_start).masked_fill(outside, 0);
  const at::Tensor rows = at::embedding(w, local).masked_fill(outside.unsqueeze(-1), 0);  // [*, d]
  return reduce_from_region(rows, g);
}

at::Tensor vocab_parallel_cross_entropy_per_token(const at::Tensor& logits_shard, const at::Tensor& targets,
                                                  int64_t vocab_start, Communicator& g, int64_t ignore_index) {
  LOPA_CHECK(logits_shard.dim() >= 1 && logits_shard.sizes().slice(0, logits_shard.dim() - 1) == targets.sizes(),
             "vocab_parallel_cross_entropy: targets of shape ", std::string(c10::str(targets.sizes())),
             " do not match logits of shape ", std::string(c10::str(logits_shard.sizes())));
  const int64_t vl = logits_shard.size(-1);
  const at::Tensor loss = VocabParallelCrossEntropy::apply(logits_shard.reshape({-1, vl}),
                                                           targets.reshape({-1}).to(at::kLong), vocab_start,
                                                           ignore_index, &g);
  return loss.view(targets.sizes());
}

at::Tensor vocab_parallel_cross_entropy(const at::Tensor& logits_shard, const at::Tensor& targets, int64_t vocab_start,
                                        Communicator& g, int64_t ignore_index) {
  const at::Tensor loss = vocab_parallel_cross_entropy_per_token(logits_shard, targets, vocab_start, g, ignore_index);
  const at::Tensor count = targets.ne(ignore_index).sum().to(at::kFloat);
  return loss.sum() / count;
}

Range shard_range(int64_t n, int rank, int size, const char* what) {
  LOPA_CHECK(size >= 1 && rank >= 0 && rank < size, what, ": rank ", rank, " is not in a group of ", size);
  LOPA_CHECK(n % size == 0, what, ": ", n, " does not split evenly over tp = ", size, " ranks");
  const int64_t c = n / size;
  return {rank * c, (rank + 1) * c};
}

Range kv_head_range(int64_t n_heads, int64_t n_kv_heads, int rank, int size) {
  LOPA_CHECK(n_kv_heads >= 1 && n_heads % n_kv_heads == 0, "attention: ", n_heads,
             " query heads do not form groups over ", n_kv_heads, " key/value heads");
  shard_range(n_heads, rank, size, "attention query heads");  // checks tp | n_heads
  if (n_kv_heads % size == 0) return shard_range(n_kv_heads, rank, size, "attention key/value heads");
  LOPA_CHECK(size % n_kv_heads == 0, "attention: tp = ", size, " neither divides nor is a multiple of the ",
             n_kv_heads, " key/value heads");
  const int64_t h = rank / (size / n_kv_heads);  // ranks r·tp/n_kv .. share KV head h
  return {h, h + 1};
}

}  // namespace lopa::tp
