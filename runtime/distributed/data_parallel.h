// Data parallelism for the trainable parameters: every dp rank holds a replica, starts from dp rank 0's
// values, works on its own shard of each global batch, and applies the gradient of the global batch
// (gradients reduced over the dp group in a few flat buckets per step, not one collective per tensor).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/distributed/communicator.h"

namespace lopa {

class DataParallel {
 public:
  // `params`: the trainable parameters (those with requires_grad; others are ignored), in the same
  // order on every rank. Buckets hold at most `bucket_bytes` of one dtype and device each.
  DataParallel(std::shared_ptr<Communicator> dp, std::vector<at::Tensor> params,
               int64_t bucket_bytes = int64_t(16) << 20);

  // Every replica takes dp rank `root`'s parameter values (call once, before training).
  void broadcast_parameters(int root = 0);

  // grad ← mean over dp ranks of grad: right when every rank's loss is a mean over equally many
  // examples. A parameter without a gradient counts as zero (and gets one).
  void average_gradients();
  // grad ← Σ_r w_r grad_r / Σ_r w_r, with w_r = local_weight on rank r (its number of examples or
  // target tokens): the gradient of the global-batch mean when each rank's loss is its shard's mean.
  void average_gradients_weighted(double local_weight);

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  const std::vector<at::Tensor>& params() const { return params_; }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into params_
    int64_t numel = 0;
  };
  void reduce(ReduceOp op, double scale, double divisor);

  std::shared_ptr<Communicator> dp_;
  std::vector<at::Tensor> params_;
  std::vector<Bucket> buckets_;
};

// The rows [begin, end) of a global batch of n examples that dp rank `rank` of `size` works on:
// contiguous, disjoint, covering all n; sizes differ by at most one (the first n % size ranks take
// one more). Requires n >= size so that no rank is idle.
struct BatchShard {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
BatchShard batch_shard(int64_t n, int rank, int size);
// `global` narrowed along dim 0 to this rank's batch_shard.
at::Tensor shard_batch(const at::Tensor& global, int rank, int size);

}  // namespace lopa
