// Megatron-style tensor-parallel regions and layers for the frozen FM, as autograd-aware functions.
// With a group of one every function is the plain single-device computation.
//
// Conventions (as Megatron-LM core/tensor_parallel): a column-parallel linear holds rows
// [rank*out/tp, (rank+1)*out/tp) of W (out×in) and produces its slice of the output features; a
// row-parallel linear holds the matching columns of W and all-reduces its partial products.
// Frozen weights (requires_grad = false) never get a gradient formed: the backward of every function
// here returns only what its inputs need, and LibTorch's linear/embedding skip unneeded weight grads.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "runtime/distributed/communicator.h"

namespace lopa::tp {

// forward: identity; backward: all-reduce of the gradient over the group.
at::Tensor copy_to_region(const at::Tensor& x, Communicator& group);
// forward: all-reduce over the group; backward: identity.
at::Tensor reduce_from_region(const at::Tensor& x, Communicator& group);
// forward: all-gather along the last dim; backward: this rank's slice of the gradient.
at::Tensor gather_from_region(const at::Tensor& x, Communicator& group);
// forward: this rank's slice along the last dim; backward: all-gather of the gradient.
at::Tensor scatter_to_region(const at::Tensor& x, Communicator& group);

// y_shard = x · W_shardᵀ (+ b_shard). x is replicated; weight gradients only if W requires grad.
// x: [*, in], W_shard: [out/tp, in] → [*, out/tp], or [*, out] with gather_output.
at::Tensor column_parallel_linear(const at::Tensor& x, const at::Tensor& weight_shard,
                                  const at::Tensor& bias_shard, Communicator& group, bool gather_output);
// y = Σ_ranks x_shard · W_shardᵀ (+ b, added once after the reduction).
// x_shard: [*, in/tp], W_shard: [out, in/tp] → [*, out].
at::Tensor row_parallel_linear(const at::Tensor& x_shard, const at::Tensor& weight_shard,
                               const at::Tensor& bias, Communicator& group);

// Embedding with the vocabulary split in contiguous ranges: rows [vocab_start, vocab_start + n) of
// the table live on this rank; ids outside it contribute zero; the result is all-reduced.
// ids: [*] int64, weight_shard: [n, d] → [*, d].
at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& weight_shard, int64_t vocab_start,
                                    Communicator& group);

// Mean cross-entropy over targets != ignore_index from vocab-sharded logits (N × V/tp), never
// gathering full-vocabulary logits. Returns a 0-d f32 tensor (NaN when every target is ignored, as
// torch); differentiable w.r.t. logits_shard. logits_shard: [*, V/tp] any float dtype, targets: [*].
at::Tensor vocab_parallel_cross_entropy(const at::Tensor& logits_shard, const at::Tensor& targets,
                                        int64_t vocab_start, Communicator& group, int64_t ignore_index = -100);
// The same, unreduced: f32 loss per target, shape [*], 0 where the target is ignore_index.
at::Tensor vocab_parallel_cross_entropy_per_token(const at::Tensor& logits_shard, const at::Tensor& targets,
                                                  int64_t vocab_start, Communicator& group,
                                                  int64_t ignore_index = -100);

// This rank's contiguous share [begin, end) of n items split evenly over `size` ranks (features,
// heads, vocabulary rows). Throws naming `what` when size does not divide n.
struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Range shard_range(int64_t n, int rank, int size, const char* what);

// Grouped-query attention split by heads: this rank's query heads are shard_range(n_heads); its
// key/value heads are shard_range(n_kv_heads) when tp divides n_kv_heads, else (fewer KV heads than
// ranks) the one KV head its query heads attend to, replicated on tp/n_kv_heads ranks.
// Requires n_heads % tp == 0 and either n_kv_heads % tp == 0 or tp % n_kv_heads == 0.
Range kv_head_range(int64_t n_heads, int64_t n_kv_heads, int rank, int size);

}  // namespace lopa::tp
