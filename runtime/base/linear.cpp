// lopa::linear: at::linear, or per-row BLAS gemv for decode-sized inputs (see linear.h for why).
#include "runtime/base/linear.h"

#include <dlfcn.h>

#include <algorithm>

namespace lopa {
namespace {

// OpenBLAS (openmp build) sizes each call's thread team from omp_get_max_threads(), as ATen's
// parallel_for does. The symbols are looked up rather than linked so that it is the OpenMP runtime
// LibTorch itself loaded (pip's torch ships its own libgomp); without one the guard does nothing.
using omp_set_fn = void (*)(int);
using omp_get_fn = int (*)();
omp_set_fn omp_set() {
  static const auto fn = reinterpret_cast<omp_set_fn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return fn;
}
omp_get_fn omp_get() {
  static const auto fn = reinterpret_cast<omp_get_fn>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  return fn;
}

bool gemv_path(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (!x.device().is_cpu() || !w.device().is_cpu() || x.dim() < 1) return false;
  const auto dt = x.scalar_type();
  if ((dt != at::kFloat && dt != at::kDouble) || w.scalar_type() != dt || w.dim() != 2) return false;
  if (b.defined() && b.scalar_type() != dt) return false;
  if (x.size(-1) != w.size(1) || x.numel() == 0 || x.numel() / x.size(-1) > kFewRows) return false;
  const bool grad = at::GradMode::is_enabled() &&
                    (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad()));
  return !grad;
}

}  // namespace

OneThreadIfSmall::OneThreadIfSmall(int64_t macs) {
  if (macs >= kSingleThreadMacs || !omp_set() || !omp_get()) return;
  previous_ = omp_get()();
  if (previous_ > 1) omp_set()(1);
}

OneThreadIfSmall::~OneThreadIfSmall() {
  if (previous_ > 1) omp_set()(previous_);
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (!gemv_path(x, w, b)) {
    OneThreadIfSmall guard(x.device().is_cpu() && w.dim() == 2 ? x.numel() / std::max<int64_t>(1, w.size(1)) * w.numel()
                                                                : kSingleThreadMacs);
    return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
  }
  const int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
  auto x2 = x.reshape({rows, in});
  auto y = at::empty({rows, out}, x.options());
  OneThreadIfSmall guard(w.numel() * w.element_size() < kSingleThreadBytes ? 0 : kSingleThreadMacs);
  for (int64_t i = 0; i < rows; ++i) {
    auto yi = y.select(0, i);
    if (b.defined()) {
      at::addmv_out(yi, b, w, x2.select(0, i));
    } else {
      at::mv_out(yi, w, x2.select(0, i));
    }
  }
  auto shape = x.sizes().vec();
  shape.back() = out;
  return y.view(shape);
}

}  // namespace lopa
