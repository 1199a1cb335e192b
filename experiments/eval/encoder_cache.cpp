#include "experiments/eval/encoder_cache.h"

#include <algorithm>

#include "runtime/base/error.h"

namespace lopa {

EncoderCache::EncoderCache(int64_t num_instances, int64_t hidden, at::ScalarType dtype, at::Device device,
                           EmbedFn embed, int64_t batch_size)
    : filled_(static_cast<size_t>(num_instances), false), embed_(std::move(embed)), batch_size_(std::max<int64_t>(1, batch_size)) {
  // Not allocated up front: pages of rows never drawn (other ranks' shards) stay untouched.
  table_ = at::empty({num_instances, hidden}, at::TensorOptions().dtype(dtype).device(device));
}

at::Tensor EncoderCache::rows(const std::vector<int64_t>& idx) {
  std::vector<int64_t> missing;
  for (auto i : idx) {
    LOPA_CHECK(i >= 0 && i < static_cast<int64_t>(filled_.size()), "encoder cache: instance ", i, " out of range");
    if (!filled_[i] && std::find(missing.begin(), missing.end(), i) == missing.end()) missing.push_back(i);
  }
  for (size_t s = 0; s < missing.size(); s += batch_size_) {
    std::vector<int64_t> part(missing.begin() + s, missing.begin() + std::min(missing.size(), s + batch_size_));
    at::Tensor e = embed_(part);
    LOPA_CHECK(e.dim() == 2 && e.size(0) == static_cast<int64_t>(part.size()) && e.size(1) == table_.size(1),
               "encoder cache: the encoder returned ", e.sizes(), " for ", part.size(), " instances of width ",
               table_.size(1));
    table_.index_copy_(0, at::tensor(part, at::kLong).to(table_.device()), e.to(table_.scalar_type()));
    for (auto i : part) filled_[i] = true;
    filled_count_ += static_cast<int64_t>(part.size());
  }
  return table_.index_select(0, at::tensor(idx, at::kLong).to(table_.device())).to(at::kFloat);
}

}  // namespace lopa
