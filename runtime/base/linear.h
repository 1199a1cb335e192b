// y = x Wᵀ + b as at::linear computes it, with a faster path for the few rows of a decode step.
#pragma once

#include <ATen/ATen.h>

namespace lopa {

// x … × in, w out × in, b out or undefined → … × out. On the CPU, for float/double inputs of at most
// kFewRows rows that need no gradient, it runs one BLAS matrix-vector product per row: OpenBLAS's
// sgemm packs all of W even for a single row of x (a third of a 10M decode step), sgemv streams W
// once. Weights under kSingleThreadBytes run on one thread, since waking the other OpenMP threads
// (passive wait policy) costs more than the product itself. Anything else goes to at::linear, on one
// thread when it is smaller than kSingleThreadMacs multiply-adds (a decode step of a batch of requests:
// with two threads an 8-row step of glue-lm-8M ran at 1,000-1,340 tokens/s, with this rule 1,540).
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {});

constexpr int64_t kFewRows = 4;
constexpr int64_t kSingleThreadBytes = int64_t{8} << 20;
constexpr int64_t kSingleThreadMacs = int64_t{1} << 22;

// While alive, the calling thread's OpenMP team (ATen's parallel_for and OpenBLAS's) is one thread when
// `macs`, the multiply-adds of the products it guards, is under kSingleThreadMacs: below that, waking
// the other threads costs more than they save. The previous count is restored on destruction.
class OneThreadIfSmall {
 public:
  explicit OneThreadIfSmall(int64_t macs);
  ~OneThreadIfSmall();
  OneThreadIfSmall(const OneThreadIfSmall&) = delete;
  OneThreadIfSmall& operator=(const OneThreadIfSmall&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace lopa
