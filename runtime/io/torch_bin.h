// PyTorch checkpoints as torch.save writes them (pytorch_model.bin): a zip archive of data.pkl, the
// pickled state dict {name: tensor}, and one record per storage (data/<key>). Read with LibTorch's
// own PyTorchStreamReader and Unpickler; storages are views into a private mapping of the file, so
// opening reads only the pickle, a tensor read touches only its own pages, and tensors that share a
// storage (slices, tied weights) keep their offsets and strides.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/io/safetensors.h"

namespace lopa {

class TorchBinFile {
 public:
  // Maps `path` and unpickles its state dict. Throws lopa::Error "PATH: problem" for a file that is
  // not a torch zip archive (the legacy pre-1.6 format, safetensors, random bytes: each named), a
  // truncated or damaged archive, a pickle that is not a flat {str: tensor} dict, or a tensor whose
  // sizes, strides and offset reach outside its storage record.
  static TorchBinFile open(const std::string& path);

  const std::string& path() const;
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;  // in the state dict's order
  // dtype_code is the safetensors code where one exists ("F16"), else LibTorch's name; begin/end is
  // the file byte range the tensor's elements span (the whole tensor for a contiguous one).
  const TensorInfo& info(const std::string& name) const;  // throws "PATH: no tensor 'name'"

  // As SafetensorsFile: converted to `dtype` (Undefined: the stored type); a zero-copy view of the
  // mapping (copy-on-write) when no conversion is needed and the stored layout is contiguous.
  at::Tensor tensor(const std::string& name, at::ScalarType dtype = at::ScalarType::Undefined) const;
  at::Tensor rows(const std::string& name, int64_t begin, int64_t end,
                  at::ScalarType dtype = at::ScalarType::Undefined) const;
  at::Tensor cols(const std::string& name, int64_t begin, int64_t end,
                  at::ScalarType dtype = at::ScalarType::Undefined) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// What a weights file holds, judged by its first bytes.
enum class WeightsFormat { kTorchZip, kTorchLegacy, kSafetensors, kUnknown };
WeightsFormat sniff_weights_format(const std::string& path);  // throws when it cannot be read

}  // namespace lopa
