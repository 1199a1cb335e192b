#include "runtime/distributed/data_parallel.h"

#include <map>
#include <tuple>

#include "runtime/base/error.h"

namespace lopa {

DataParallel::DataParallel(std::shared_ptr<Communicator> dp, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : dp_(std::move(dp)) {
  LOPA_CHECK(dp_, "DataParallel: no dp communicator");
  LOPA_CHECK(bucket_bytes > 0, "DataParallel: bucket size must be positive, got ", bucket_bytes);
  for (auto& p : params)
    if (p.defined() && p.requires_grad()) params_.push_back(p);
  // Fill buckets in parameter order, one open bucket per (dtype, device); a parameter larger than
  // bucket_bytes gets a bucket of its own.
  std::map<std::tuple<int, int, int>, size_t> open;  // (dtype, device type, index) → bucket
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    const auto key = std::make_tuple(static_cast<int>(p.scalar_type()), static_cast<int>(p.device().type()),
                                     static_cast<int>(p.device().index()));
    auto it = open.find(key);
    if (it == open.end() || (buckets_[it->second].numel + p.numel()) * p.element_size() > bucket_bytes) {
      buckets_.emplace_back();
      it = open.insert_or_assign(key, buckets_.size() - 1).first;
    }
    buckets_[it->second].members.push_back(i);
    buckets_[it->second].numel += p.numel();
  }
}

void DataParallel::broadcast_parameters(int root) {
  if (dp_->size() == 1) return;
  at::NoGradGuard no_grad;
  for (const auto& b : buckets_) {
    std::vector<at::Tensor> flat;
    for (size_t i : b.members) flat.push_back(params_[i].detach().reshape({-1}));
    at::Tensor buf = at::cat(flat);
    dp_->broadcast(buf, root);
    int64_t off = 0;
    for (size_t i : b.members) {
      auto& p = params_[i];
      p.detach().copy_(buf.narrow(0, off, p.numel()).view(p.sizes()));
      off += p.numel();
    }
  }
}

void DataParallel::average_gradients() { reduce(ReduceOp::Avg, 1.0, 1.0); }

void DataParallel::average_gradients_weighted(double local_weight) {
  LOPA_CHECK(local_weight >= 0, "DataParallel: gradient weight must be >= 0, got ", local_weight);
  at::Tensor total = at::full({1}, local_weight, at::kDouble);
  dp_->all_reduce(total, ReduceOp::Sum);
  const double sum = total.item<double>();
  LOPA_CHECK(sum > 0, "DataParallel: every dp rank has gradient weight 0 (empty shards)");
  reduce(ReduceOp::Sum, local_weight, sum);
}

// grad ← (Σ_r scale_r · grad_r) / divisor, bucket by bucket (op Avg: divisor = dp size, scale 1).
void DataParallel::reduce(ReduceOp op, double scale, double divisor) {
  at::NoGradGuard no_grad;
  const bool alone = dp_->size() == 1;
  for (const auto& b : buckets_) {
    std::vector<at::Tensor> flat;
    for (size_t i : b.members) {
      auto& p = params_[i];
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      flat.push_back(p.grad().reshape({-1}));
    }
    if (alone && scale == divisor) continue;  // a group of one with weight w/w: nothing changes
    at::Tensor buf = at::cat(flat);
    if (scale != 1.0) buf.mul_(scale);
    dp_->all_reduce(buf, op);
    if (divisor != 1.0) buf.div_(divisor);
    int64_t off = 0;
    for (size_t i : b.members) {
      auto& g = params_[i].mutable_grad();
      g.copy_(buf.narrow(0, off, g.numel()).view(g.sizes()));
      off += g.numel();
    }
  }
}

BatchShard batch_shard(int64_t n, int rank, int size) {
  LOPA_CHECK(size >= 1 && rank >= 0 && rank < size, "batch_shard: rank ", rank, " is not in a dp group of ", size);
  LOPA_CHECK(n >= size, "batch-size ", n, " is smaller than dp = ", size, ": some ranks would get no examples");
  const int64_t base = n / size, extra = n % size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

at::Tensor shard_batch(const at::Tensor& global, int rank, int size) {
  const BatchShard s = batch_shard(global.size(0), rank, size);
  return global.narrow(0, s.begin, s.size());
}

}  // namespace lopa
