// apply_rotary (one autograd node with a hand-written backward) against the composite of LibTorch
// ops that HF writes, x·cos + rotate_half(x)·sin, differentiated by autograd: values and input
// gradients must agree, in float64 to rounding and in float32 to float32 rounding.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include "runtime/model/rotary.h"

namespace {

at::Tensor reference(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t h = x.size(-1) / 2;
  return x * cos + at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1) * sin;
}

void check(at::ScalarType dt, double tol) {
  at::manual_seed(3);
  const int64_t B = 2, H = 3, T = 5, hd = 8;
  auto angles = at::rand({B, 1, T, hd / 2}, at::kDouble) * 6.0;
  auto emb = at::cat({angles, angles}, -1);
  auto cos = emb.cos().to(dt), sin = emb.sin().to(dt);
  auto x0 = at::randn({B, H, T, hd}, at::kDouble).to(dt);
  auto g = at::randn({B, H, T, hd}, at::kDouble).to(dt);

  auto x1 = x0.clone().requires_grad_(true), x2 = x0.clone().requires_grad_(true);
  auto y1 = lopa::apply_rotary(x1, cos, sin);
  auto y2 = reference(x2, cos, sin);
  EXPECT_LT((y1 - y2).abs().max().item<double>(), tol);
  (y1 * g).sum().backward();
  (y2 * g).sum().backward();
  EXPECT_LT((x1.grad() - x2.grad()).abs().max().item<double>(), tol);
  // The gradient is not trivially equal to g: the rotation moved it between the halves.
  EXPECT_GT((x1.grad() - g).abs().max().item<double>(), 0.1);
  // A rotation keeps the norm of every (x_i, x_{i+hd/2}) pair, so it keeps the norm of each vector.
  EXPECT_NEAR(y1.detach().norm().item<double>(), x0.norm().item<double>(), 1e3 * tol);
}

TEST(Rotary, MatchesTheCompositeFormAndItsAutogradFloat64) { check(at::kDouble, 1e-12); }
TEST(Rotary, MatchesTheCompositeFormAndItsAutogradFloat32) { check(at::kFloat, 1e-5); }

TEST(Rotary, NoGradModeBuildsNoGraph) {
  at::NoGradGuard g;
  auto x = at::randn({1, 2, 3, 4});
  auto c = at::ones({1, 1, 3, 4}), s = at::zeros({1, 1, 3, 4});
  auto y = lopa::apply_rotary(x, c, s);  // angle 0: identity
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(at::equal(y, x));
}

}  // namespace
