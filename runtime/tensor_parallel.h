// Megatron-style tensor-parallel regions and layers for the frozen FM, as autograd-aware functions.
// With a group of one every function is the plain single-device computation.
//
// Conventions (as Megatron-LM core/tensor_parallel): a column-parallel linear holds rows
// [rank*out/tp, (rank+1)*out/tp) of W (out×in) and produces its slice of the output features; a
// row-parallel linear holds the matching columns of W and all-reduces its partial products.
#pragma once

#include <ATen/ATen.h>

#include "runtime/communicator.h"

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
at::Tensor column_parallel_linear(const at::Tensor& x, const at::Tensor& weight_shard,
                                  const at::Tensor& bias_shard, Communicator& group, bool gather_output);
// y = Σ_ranks x_shard · W_shardᵀ (+ b, added once after the reduction).
at::Tensor row_parallel_linear(const at::Tensor& x_shard, const at::Tensor& weight_shard,
                               const at::Tensor& bias, Communicator& group);

// Embedding with the vocabulary split in contiguous ranges: rows [vocab_start, vocab_start + n) of
// the table live on this rank; ids outside it contribute zero; the result is all-reduced.
at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& weight_shard, int64_t vocab_start,
                                    Communicator& group);

// Mean cross-entropy over targets != ignore_index from vocab-sharded logits (N × V/tp), never
// gathering full-vocabulary logits. Returns a 0-d tensor; differentiable w.r.t. logits_shard.
at::Tensor vocab_parallel_cross_entropy(const at::Tensor& logits_shard, const at::Tensor& targets,
                                        int64_t vocab_start, Communicator& group, int64_t ignore_index = -100);

}  // namespace lopa::tp
