// A Hugging Face checkpoint directory: config.json plus either model.safetensors or the shards named
// by model.safetensors.index.json. Tensors are looked up by HF name across shards and read (whole,
// or as a row/column slice for a tensor-parallel shard) with conversion to the run's dtype.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "runtime/safetensors.h"

namespace lopa {

class Checkpoint {
 public:
  // Opens DIR: validates the index (when sharded) and every shard's header. Throws lopa::Error
  // naming the file for a missing directory, missing weights file, bad index or bad shard.
  static Checkpoint open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/config.json"; }
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;
  const TensorInfo& info(const std::string& name) const;  // throws "DIR: tensor 'name' not found in ..."
  std::string file_of(const std::string& name) const;    // the shard holding it
  int64_t num_elements() const;                           // Σ numel over every stored tensor

  at::Tensor tensor(const std::string& name, at::ScalarType dtype = at::ScalarType::Undefined) const;
  at::Tensor rows(const std::string& name, int64_t begin, int64_t end,
                  at::ScalarType dtype = at::ScalarType::Undefined) const;
  at::Tensor cols(const std::string& name, int64_t begin, int64_t end,
                  at::ScalarType dtype = at::ScalarType::Undefined) const;

 private:
  const SafetensorsFile& shard_of(const std::string& name) const;
  std::string dir_;
  std::vector<SafetensorsFile> shards_;
  std::vector<std::pair<std::string, size_t>> index_;  // sorted by name → shard
};

}  // namespace lopa
