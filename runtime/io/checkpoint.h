// A Hugging Face checkpoint directory: config.json plus the weights, as transformers looks for them:
// model.safetensors.index.json (its shards), model.safetensors, pytorch_model.bin.index.json or
// pytorch_model.bin (torch.save zip archives). Tensors are looked up by HF name across shards and read
// (whole, or as a row/column slice for a tensor-parallel shard) with conversion to the run's dtype.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <variant>
#include <vector>

#include "runtime/io/safetensors.h"
#include "runtime/io/torch_bin.h"

namespace lopa {

class Checkpoint {
 public:
  // Opens DIR: validates the index (when sharded) and every shard's header (a .bin shard is
  // unpickled; its tensor data is not read). Safetensors wins when both formats are present, as in
  // transformers. Throws lopa::Error naming the file for a missing directory, missing weights file,
  // bad index, missing shard, tensor missing from its shard, or bad shard.
  static Checkpoint open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/config.json"; }
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;
  const TensorInfo& info(const std::string& name) const;  // throws "DIR: tensor 'name' not found in ..."
  std::string file_of(const std::string& name) const;    // the shard holding it
  const std::string& weights_file() const { return source_; }  // "model.safetensors", "pytorch_model.bin", ...
  int64_t num_elements() const;                           // Σ numel over every stored tensor

  at::Tensor tensor(const std::string& name, at::ScalarType dtype = at::ScalarType::Undefined) const;
  at::Tensor rows(const std::string& name, int64_t begin, int64_t end,
                  at::ScalarType dtype = at::ScalarType::Undefined) const;
  at::Tensor cols(const std::string& name, int64_t begin, int64_t end,
                  at::ScalarType dtype = at::ScalarType::Undefined) const;

 private:
  using Shard = std::variant<SafetensorsFile, TorchBinFile>;
  const Shard& shard_of(const std::string& name) const;
  std::string dir_;
  std::string source_;  // the file open() started from (single file or index)
  std::vector<Shard> shards_;
  std::vector<std::pair<std::string, size_t>> index_;  // sorted by name → shard
};

}  // namespace lopa
