// LoPA generator: trainable-parameter count equals 2(H·h + h) + (h+1)·r·(m+d) + m·d for several shapes;
// a tiny forward (H=2, h=2, m=2, d=3, r=1) with weights set by hand equals the value derived by hand;
// gradients reach every LoPA parameter; adapter files round-trip.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "baselines/idpg.h"
#include "lopa/lopa_prompt.h"

using namespace lopa;

namespace {
LopaOptions opts(int64_t H, int64_t h, int64_t m, int64_t d, int64_t r, LopaCombine c = LopaCombine::Mul) {
  LopaOptions o;
  o.combine = c;
  o.encoder_dim = H;
  o.head_dim = h;
  o.num_tokens = m;
  o.model_dim = d;
  o.rank = r;
  return o;
}
void set(at::Tensor& p, std::vector<float> values) {
  at::NoGradGuard g;
  p.copy_(torch::tensor(values).view(p.sizes()));
}
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
}  // namespace

TEST(LopaPrompt, ParameterCountMatchesPaperFormula) {
  struct Shape { int64_t H, h, m, d, r; };
  for (auto s : {Shape{2, 2, 2, 3, 1}, Shape{64, 64, 10, 64, 4}, Shape{768, 256, 5, 2048, 1},
                 Shape{1024, 1024, 25, 4096, 2}, Shape{7, 3, 1, 5, 8}}) {
    LopaPrompt p(opts(s.H, s.h, s.m, s.d, s.r));
    // The formula written out independently of LopaPrompt::formula.
    const int64_t expected = 2 * (s.H * s.h + s.h) + (s.h + 1) * s.r * (s.m + s.d) + s.m * s.d;
    EXPECT_EQ(count_elements(p.parameters()), expected) << "H=" << s.H << " h=" << s.h << " m=" << s.m;
    EXPECT_EQ(p.num_trainable_parameters(), expected);
    for (auto& [name, t] : p.parameters()) EXPECT_TRUE(t.requires_grad()) << name;
  }
}

// The paper's GLUE sizes (roberta-large encoder and FM: H = d = 1024; h = 256; m = 10): its table gives
// LoPA (r = 4) 1.60M and S-IDPG 2.89M trainable parameters. Counted from the tensors themselves.
TEST(LopaPrompt, PaperGlueSizesHaveThePapersCounts) {
  LopaPrompt lopa(opts(1024, 256, 10, 1024, 4));
  IdpgOptions io;
  io.encoder_dim = 1024;
  io.head_dim = 256;
  io.num_tokens = 10;
  io.model_dim = 1024;
  Idpg idpg(io);
  const int64_t n_lopa = count_elements(lopa.parameters()), n_idpg = count_elements(idpg.parameters());
  // By hand: 2·(1024·256 + 256) + 257·4·(10 + 1024) + 10·1024 and 1024·256 + 256 + 257·10·1024.
  EXPECT_EQ(n_lopa, 1597992);
  EXPECT_EQ(n_idpg, 2894080);
  EXPECT_EQ(std::llround(n_lopa / 1e4), 160);  // 1.60M
  EXPECT_EQ(std::llround(n_idpg / 1e4), 289);  // 2.89M
  EXPECT_EQ(lopa.num_trainable_parameters(), n_lopa);
  EXPECT_EQ(idpg.num_trainable_parameters(), n_idpg);
}

TEST(LopaPrompt, HeadDimDefaultsToEncoderDim) {
  LopaPrompt p(opts(16, 0, 4, 8, 2));
  EXPECT_EQ(p.options().head_dim, 16);
  EXPECT_EQ(p.row_w1.size(0), 16);
}

TEST(LopaPrompt, InitialisationAsOfficialCode) {
  torch::manual_seed(0);
  LopaPrompt p(opts(256, 256, 10, 256, 4));
  EXPECT_NEAR(p.row_w1.std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(p.col_w2.std().item<double>(), 0.02, 0.002);
  EXPECT_EQ(p.row_b2.abs().sum().item<double>(), 0.0);
  EXPECT_EQ(p.col_b2.abs().sum().item<double>(), 0.0);
}

TEST(LopaPrompt, HandComputedForward) {
  LopaPrompt p(opts(2, 2, 2, 3, 1));
  p.set_training(false);  // no dropout
  set(p.row_w1, {1, 0, 0, 1});
  set(p.row_b1, {0, 0});
  set(p.row_w2, {1, 0, 0, 1});
  set(p.row_b2, {0, 0.5});
  set(p.col_w1, {0, 1, 1, 0});
  set(p.col_b1, {0.5, 0});
  set(p.col_w2, {1, 0, 0, 1, 1, 1});
  set(p.col_b2, {0, 0, -1});
  set(p.z_s, {1, 2, 3, -1, 0.5, 2});
  auto e = torch::tensor({1.0f, 0.0f}).view({1, 2});
  // By hand: row head tanh(W1 e + b1) = [tanh 1, 0] → u = [tanh 1, 0.5];
  // column head tanh([0 + 0.5, 1 + 0]) = [tanh .5, tanh 1] → v = [s, t, s + t - 1].
  const double t = std::tanh(1.0), s = std::tanh(0.5);
  const double u[2] = {t, 0.5}, v[3] = {s, t, s + t - 1};
  const double zs[2][3] = {{1, 2, 3}, {-1, 0.5, 2}};
  auto z = p.soft_prompt(e, 1);
  ASSERT_EQ(z.sizes(), (std::vector<int64_t>{1, 2, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(z[0][i][j].item<double>(), zs[i][j] * sigmoid(u[i] * v[j]), 1e-6);

  // The variants on the same instance component.
  LopaPrompt add(opts(2, 2, 2, 3, 1, LopaCombine::Add)), mx(opts(2, 2, 2, 3, 1, LopaCombine::Max)),
      cat(opts(2, 2, 2, 3, 1, LopaCombine::Concat));
  for (auto* q : {&add, &mx, &cat}) {
    auto src = p.parameters();
    auto dst = q->parameters();
    at::NoGradGuard g;
    for (size_t k = 0; k < src.size(); ++k) dst[k].second.copy_(src[k].second);
    q->set_training(false);
  }
  auto za = add.soft_prompt(e, 1), zm = mx.soft_prompt(e, 1), zc = cat.soft_prompt(e, 1);
  ASSERT_EQ(zc.size(1), 4);
  EXPECT_EQ(cat.prompt_length(), 4);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      EXPECT_NEAR(za[0][i][j].item<double>(), zs[i][j] + u[i] * v[j], 1e-6);
      EXPECT_NEAR(zm[0][i][j].item<double>(), std::max(zs[i][j], u[i] * v[j]), 1e-6);
      EXPECT_NEAR(zc[0][i][j].item<double>(), zs[i][j], 1e-6);
      EXPECT_NEAR(zc[0][2 + i][j].item<double>(), u[i] * v[j], 1e-6);
    }
}

TEST(LopaPrompt, RankTwoIsSumOfOuterProducts) {
  torch::manual_seed(3);
  LopaPrompt p(opts(4, 5, 3, 6, 2));
  p.set_training(false);
  auto e = torch::randn({2, 4});
  auto inst = p.instance_component(e);
  // Independent path: heads by plain matmuls, u vᵀ as Σ_k u[:,k] ⊗ v[:,k].
  auto hu = torch::tanh(e.matmul(p.row_w1.t()) + p.row_b1).matmul(p.row_w2.t()) + p.row_b2;
  auto hv = torch::tanh(e.matmul(p.col_w1.t()) + p.col_b1).matmul(p.col_w2.t()) + p.col_b2;
  for (int b = 0; b < 2; ++b) {
    auto u = hu[b].view({3, 2}), v = hv[b].view({6, 2});
    auto expect = torch::outer(u.select(1, 0), v.select(1, 0)) + torch::outer(u.select(1, 1), v.select(1, 1));
    EXPECT_TRUE(torch::allclose(inst[b], expect, 1e-5, 1e-6));
  }
}

TEST(LopaPrompt, GradientsReachEveryParameter) {
  torch::manual_seed(1);
  LopaPrompt p(opts(4, 4, 2, 3, 1));
  auto e = torch::randn({3, 4});
  p.soft_prompt(e, 3).pow(2).sum().backward();
  for (auto& [name, t] : p.parameters()) {
    ASSERT_TRUE(t.grad().defined()) << name;
    EXPECT_GT(t.grad().abs().sum().item<double>(), 0) << name;
  }
  EXPECT_FALSE(e.grad().defined());
}

TEST(LopaPrompt, DropoutOnlyWhileTraining) {
  torch::manual_seed(2);
  LopaPrompt p(opts(8, 8, 2, 3, 1));
  auto e = torch::randn({4, 8});
  p.set_training(false);
  EXPECT_TRUE(torch::equal(p.soft_prompt(e, 4), p.soft_prompt(e, 4)));
  p.set_training(true);
  EXPECT_FALSE(torch::equal(p.soft_prompt(e, 4), p.soft_prompt(e, 4)));
}

TEST(LopaPrompt, SaveLoadRoundTrip) {
  const auto dir = std::filesystem::temp_directory_path() / "lopa_test_adapter";
  std::filesystem::remove_all(dir);
  torch::manual_seed(4);
  LopaPrompt a(opts(4, 3, 2, 5, 2)), b(opts(4, 3, 2, 5, 2));
  a.save(dir.string());
  EXPECT_TRUE(std::filesystem::exists(dir / "lopa_config.json"));
  b.load(dir.string());
  auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
  LopaPrompt c(opts(4, 3, 2, 5, 1));
  EXPECT_THROW(c.load(dir.string()), std::exception);
  std::filesystem::remove_all(dir);
}

TEST(LopaPrompt, UnknownCombineIsAnError) {
  EXPECT_THROW(parse_lopa_combine("gate"), std::exception);
  EXPECT_EQ(parse_lopa_combine("concat"), LopaCombine::Concat);
}
