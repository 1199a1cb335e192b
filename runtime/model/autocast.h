// Mixed-precision autocast for the training forward: while an AutocastGuard lives, LibTorch runs
// matmul-like ops on `device` in a low-precision dtype (bf16 on GPU) and keeps reductions, softmax and
// losses in fp32, so fp32 trainable parameters (LoPA heads, Z_S, LoRA factors) train against a bf16
// FM. The backward replays the casts autograd recorded, so the guard covers the forward only.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace lopa {

// "auto" | "none" | "bf16" | "fp16" → the autocast dtype on `device`; kFloat means disabled. "auto" is
// bf16 on CUDA and none on CPU (where bf16 matmuls are slower than fp32). Throws naming `what`.
at::ScalarType parse_autocast(const std::string& value, c10::Device device, const std::string& what);

class AutocastGuard {
 public:
  // dtype kFloat: does nothing. CUDA and CPU devices are supported (CPU autocast takes bf16 only).
  AutocastGuard(c10::Device device, at::ScalarType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false, cuda_ = false, was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

}  // namespace lopa
