// lopa::dropout against the definition of dropout: kept elements scaled by exactly 1/(1-p), the kept
// fraction within 5 standard deviations of 1-p, the gradient the mask itself, reproducible under
// at::manual_seed and fresh on every call.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/generated/variable_factories.h>

#include <cmath>

#include "runtime/base/dropout.h"

namespace {

TEST(Dropout, KeepsOneMinusPScaledByTheInverse) {
  at::manual_seed(7);
  const double p = 0.1;
  const int64_t n = 1 << 20;
  auto x = at::ones({n});
  auto y = lopa::dropout(x, p, true);
  auto kept = y.ne(0);
  const double frac = kept.to(at::kDouble).mean().item<double>();
  const double sd = std::sqrt(p * (1 - p) / n);
  EXPECT_NEAR(frac, 1 - p, 5 * sd);
  // Every kept value is 1/(1-p) exactly (as float); no other value appears.
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  EXPECT_TRUE(y.masked_select(kept).eq(scale).all().item<bool>());
  // Adjacent elements are independent: P(both kept) = (1-p)² within 5 sd.
  auto k = kept.to(at::kDouble);
  const double both = (k.narrow(0, 0, n - 1) * k.narrow(0, 1, n - 1)).mean().item<double>();
  EXPECT_NEAR(both, (1 - p) * (1 - p), 5 * std::sqrt((1 - p) * (1 - p) * (1 - (1 - p) * (1 - p)) / n));
}

TEST(Dropout, GradientIsTheMask) {
  at::manual_seed(3);
  auto x = torch::randn({64, 33}, torch::requires_grad());
  auto y = lopa::dropout(x, 0.3, true);
  y.sum().backward();
  // y = x·mask, so dy/dx = mask = y / x.
  EXPECT_TRUE(at::allclose(x.grad(), (y / x).detach(), 1e-5, 1e-6));
}

TEST(Dropout, ReproducibleUnderTheSeedAndFreshPerCall) {
  auto x = at::ones({4096});
  at::manual_seed(11);
  auto a = lopa::dropout(x, 0.5, true);
  auto b = lopa::dropout(x, 0.5, true);
  at::manual_seed(11);
  auto a2 = lopa::dropout(x, 0.5, true);
  EXPECT_TRUE(a.equal(a2));
  EXPECT_FALSE(a.equal(b));
}

TEST(Dropout, OffInEvalAtZeroAndEverythingAtOne) {
  auto x = at::randn({10, 10});
  EXPECT_TRUE(lopa::dropout(x, 0.5, false).is_same(x));
  EXPECT_TRUE(lopa::dropout(x, 0.0, true).is_same(x));
  EXPECT_EQ(lopa::dropout(x, 1.0, true).abs().sum().item<float>(), 0.0f);
  EXPECT_THROW(lopa::dropout(x, 1.5, true), std::exception);
}

TEST(Dropout, HalfPrecisionKeepsItsDtype) {
  at::manual_seed(5);
  auto x = at::ones({1000}, at::kBFloat16);
  auto y = lopa::dropout(x, 0.2, true);
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  EXPECT_NEAR(y.ne(0).to(at::kDouble).mean().item<double>(), 0.8, 0.07);
}

}  // namespace
