// The frozen encoder's instance embeddings, filled lazily: an instance is embedded on its first use
// (a training step that draws it) and kept, so each data-parallel rank embeds only the instances of
// its own shards and step 1 starts without embedding the whole train split first (SST-2: 67k
// instances before the first step). Rows are kept in the encoder's compute dtype (half the memory of
// float32 for a bf16 encoder) and handed out as float32.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace lopa {

class EncoderCache {
 public:
  // embed(idx) returns the embeddings (|idx|×H) of the instances idx, without gradient.
  using EmbedFn = std::function<at::Tensor(const std::vector<int64_t>& idx)>;
  EncoderCache(int64_t num_instances, int64_t hidden, at::ScalarType dtype, at::Device device, EmbedFn embed,
               int64_t batch_size);

  // float32 |idx|×H rows, embedding (in batches of batch_size) the instances not seen before.
  at::Tensor rows(const std::vector<int64_t>& idx);
  int64_t filled() const { return filled_count_; }

 private:
  at::Tensor table_;        // N×H in the encoder's dtype; row i valid iff filled_[i]
  std::vector<bool> filled_;
  int64_t filled_count_ = 0;
  EmbedFn embed_;
  int64_t batch_size_;
};

}  // namespace lopa
