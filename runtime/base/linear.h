// y = x Wᵀ + b as at::linear computes it, with a faster path for the few rows of a decode step.
#pragma once

#include <ATen/ATen.h>

namespace lopa {

// x … × in, w out × in, b out or undefined → … × out. On the CPU, for float/double inputs of at most
// kFewRows rows that need no gradient, it runs one BLAS matrix-vector product per row: OpenBLAS's
// sgemm packs all of W even for a single row of x (a third of a 10M decode step), sgemv streams W
// once. Weights under kSingleThreadBytes run on one thread, since waking the other OpenMP threads
// (passive wait policy) costs more than the product itself. Anything else goes to at::linear.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {});

constexpr int64_t kFewRows = 4;
constexpr int64_t kSingleThreadBytes = int64_t{8} << 20;

}  // namespace lopa
