// lopa::linear (per-row gemv for a few rows, at::linear otherwise) against a float64 multiply-and-sum
// that uses no BLAS at all: values, shapes, the thread count it must leave as it found it, and
// gradients (which take the at::linear path).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "runtime/base/linear.h"

namespace {

// Σ_i x[..., i] · w[o, i] + b[o], by broadcasting in float64.
at::Tensor reference(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  auto y = (x.to(at::kDouble).unsqueeze(-2) * w.to(at::kDouble)).sum(-1);
  return b.defined() ? y + b.to(at::kDouble) : y;
}

void expect_close(const at::Tensor& got, const at::Tensor& want, double rel) {
  ASSERT_EQ(got.sizes(), want.sizes());
  const double scale = want.abs().max().item<double>();
  EXPECT_LE((got.to(at::kDouble) - want).abs().max().item<double>(), rel * scale);
}

TEST(Linear, FewAndManyRowsMatchAReferenceWithAndWithoutBias) {
  at::manual_seed(11);
  for (auto dt : {at::kFloat, at::kDouble}) {
    const double rel = dt == at::kFloat ? 1e-5 : 1e-12;
    auto w = at::randn({37, 29}, at::kDouble).to(dt), b = at::randn({37}, at::kDouble).to(dt);
    for (int64_t rows : std::vector<int64_t>{1, 2, 3, lopa::kFewRows, lopa::kFewRows + 1, 17}) {
      auto x = at::randn({rows, 29}, at::kDouble).to(dt);
      expect_close(lopa::linear(x, w, b), reference(x, w, b), rel);
      expect_close(lopa::linear(x, w), reference(x, w, {}), rel);
      // Leading dims are kept: B × 1 × in is the decode step's shape.
      auto x3 = x.view({rows, 1, 29});
      auto y3 = lopa::linear(x3, w, b);
      EXPECT_EQ(y3.sizes(), (std::vector<int64_t>{rows, 1, 37}));
      expect_close(y3, reference(x3, w, b), rel);
    }
  }
}

TEST(Linear, StridedWeightAndLargeWeightMatch) {
  at::manual_seed(12);
  // A transposed (non-contiguous) weight view.
  auto wt = at::randn({29, 37});
  auto x = at::randn({2, 29});
  expect_close(lopa::linear(x, wt.t()), reference(x, wt.t(), {}), 1e-5);
  // Above kSingleThreadBytes: the product keeps every thread.
  const int64_t in = 1024, out = lopa::kSingleThreadBytes / (4 * in) + 8;
  auto w = at::randn({out, in}), b = at::randn({out});
  auto x1 = at::randn({1, in});
  expect_close(lopa::linear(x1, w, b), reference(x1, w, b), 1e-5);
}

TEST(Linear, LeavesTheThreadCountAsItFoundIt) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  auto w = at::randn({64, 32}), x = at::randn({1, 32});
  lopa::linear(x, w);  // a small weight: runs on one thread, then restores
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(before);
}

// The guard's rule, observed through the team size ATen and OpenBLAS read inside it.
TEST(Linear, SmallProductsRunOnOneThreadAndLargeOnesKeepTheTeam) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  {
    lopa::OneThreadIfSmall guard(lopa::kSingleThreadMacs - 1);
    EXPECT_EQ(at::get_num_threads(), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  {
    lopa::OneThreadIfSmall guard(lopa::kSingleThreadMacs);
    EXPECT_EQ(at::get_num_threads(), 2);
  }
  // A decode step of 8 rows through a 256×768 projection (1.6M multiply-adds) is small; the result is
  // the product's whatever the team size, and the count comes back.
  at::manual_seed(14);
  auto w = at::randn({768, 256}), x = at::randn({8, 1, 256});
  expect_close(lopa::linear(x, w), reference(x, w, {}), 1e-5);
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(before);
}

TEST(Linear, GradientsFlowThroughFewRows) {
  at::manual_seed(13);
  auto w = at::randn({7, 5}, at::kDouble).requires_grad_(true);
  auto x = at::randn({1, 5}, at::kDouble).requires_grad_(true);
  auto g = at::randn({1, 7}, at::kDouble);
  (lopa::linear(x, w) * g).sum().backward();
  // d/dx = g·W, d/dW = gᵀ·x, by hand.
  EXPECT_LT((x.grad() - at::mm(g, w.detach())).abs().max().item<double>(), 1e-12);
  EXPECT_LT((w.grad() - at::mm(g.t(), x.detach())).abs().max().item<double>(), 1e-12);
}

}  // namespace
