#include "runtime/base/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <mutex>

#include "runtime/base/error.h"

namespace lopa {

namespace {

// splitmix64's finaliser: a bijective avalanche of the element's counter (passes BigCrush as a
// counter-mode generator), so every element's draw is independent of the thread that computes it.
inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t draw_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

template <typename T>
void fill_mask(T* m, int64_t n, uint64_t seed, double p, double scale) {
  // Keep iff a uniform 32-bit draw is >= p·2³²: exact to 2⁻³² in the keep probability.
  const uint64_t threshold = static_cast<uint64_t>(p * 4294967296.0);
  const T kept = static_cast<T>(scale), dropped = static_cast<T>(0);
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      m[i] = (mix(seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(i + 1)) >> 32) >= threshold ? kept : dropped;
  });
}

}  // namespace

at::Tensor dropout(const at::Tensor& x, double p, bool train) {
  LOPA_CHECK(p >= 0 && p <= 1, "dropout: probability must be in [0, 1], got ", p);
  if (!train || p == 0) return x;
  if (p >= 1) return x * 0;
  if (!x.device().is_cpu()) return at::dropout(x, p, true);
  const uint64_t seed = draw_seed();
  const double scale = 1.0 / (1.0 - p);
  at::Tensor mask = at::empty(x.sizes(), x.options().requires_grad(false));
  const int64_t n = mask.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, mask.scalar_type(), "lopa_dropout",
                                  [&] { fill_mask<scalar_t>(mask.data_ptr<scalar_t>(), n, seed, p, scale); });
  return x * mask;
}

}  // namespace lopa
