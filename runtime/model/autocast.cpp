#include "runtime/model/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "runtime/base/error.h"

namespace lopa {

namespace {
// LibTorch 2.4 replaced the per-device setters with ones taking the device type; 1.13 (Debian) has
// only the per-device ones.
#define LOPA_TORCH_GE_2_4 (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
bool enabled(bool cuda) {
#if LOPA_TORCH_GE_2_4
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
void set_enabled(bool cuda, bool on) {
#if LOPA_TORCH_GE_2_4
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on);
#else
  cuda ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on);
#endif
}
at::ScalarType get_dtype(bool cuda) {
#if LOPA_TORCH_GE_2_4
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
void set_dtype(bool cuda, at::ScalarType t) {
#if LOPA_TORCH_GE_2_4
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t);
#else
  cuda ? at::autocast::set_autocast_gpu_dtype(t) : at::autocast::set_autocast_cpu_dtype(t);
#endif
}
}  // namespace

at::ScalarType parse_autocast(const std::string& value, c10::Device device, const std::string& what) {
  if (value == "auto") return device.is_cuda() ? at::kBFloat16 : at::kFloat;
  if (value == "none" || value.empty()) return at::kFloat;
  if (value == "bf16" || value == "bfloat16") return at::kBFloat16;
  if (value == "fp16" || value == "float16") return at::kHalf;
  fail(what, ": unknown value '", value, "' (expected none, bf16 or fp16)");
}

AutocastGuard::AutocastGuard(c10::Device device, at::ScalarType dtype) {
  if (dtype == at::kFloat) return;
  cuda_ = device.is_cuda();
  LOPA_CHECK(cuda_ || device.is_cpu(), "autocast: unsupported device ", device.str());
  LOPA_CHECK(cuda_ || dtype == at::kBFloat16, "autocast: fp16 needs a CUDA device (CPU autocast is bf16 only)");
  was_enabled_ = enabled(cuda_);
  was_dtype_ = get_dtype(cuda_);
  set_dtype(cuda_, dtype);
  set_enabled(cuda_, true);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // Leaving the outermost autocast region frees the cached low-precision copies of fp32 weights.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled(cuda_, was_enabled_);
  set_dtype(cuda_, was_dtype_);
}

}  // namespace lopa
