// safetensors reader and writer (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then
// the byte buffer. The file is memory-mapped; tensors are views into the mapping when no conversion
// is needed, and 2-D row/column slices are read without materialising the whole tensor (a
// tensor-parallel rank loads only its shard).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lopa {

struct TensorInfo {
  std::string name;
  std::string dtype_code;     // as written in the header: "F32", "BF16", ...
  at::ScalarType dtype;       // its LibTorch type
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data buffer
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps `path` and validates the whole header: its length, JSON syntax, every dtype, shape × dtype
  // size == byte range, ranges inside the file, ranges covering the buffer without overlap or gap.
  // Throws lopa::Error "PATH: problem" on any violation.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const;
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;  // in header order of their data offsets
  const TensorInfo& info(const std::string& name) const;  // throws "PATH: no tensor 'name'"
  const std::map<std::string, std::string>& metadata() const;

  // The whole tensor, converted to `dtype` (at::ScalarType::Undefined: keep the stored type). When no
  // conversion is needed it is a zero-copy view of the mapping (copy-on-write: writes stay private)
  // that keeps the file mapped while it lives.
  at::Tensor tensor(const std::string& name, at::ScalarType dtype = at::ScalarType::Undefined) const;
  // Rows [begin, end) of a 2-D tensor (or of dim 0 of an N-D one): zero-copy when no conversion.
  at::Tensor rows(const std::string& name, int64_t begin, int64_t end,
                  at::ScalarType dtype = at::ScalarType::Undefined) const;
  // Columns [begin, end) of a 2-D tensor: reads only those columns into a new contiguous tensor.
  at::Tensor cols(const std::string& name, int64_t begin, int64_t end,
                  at::ScalarType dtype = at::ScalarType::Undefined) const;

  SafetensorsFile();
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&);
  SafetensorsFile& operator=(const SafetensorsFile&);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes `tensors` (CPU or not; any dtype safetensors can hold) to `path` in the order given, with a
// header padded to a multiple of 8 bytes and the string `metadata` (default {"format": "pt"}).
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace lopa
