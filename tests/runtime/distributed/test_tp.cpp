// Tensor-parallel regions and layers against the same computation done whole on one rank. Every rank
// builds the full weights from one seed, runs the plain single-device reference, then the sharded
// version over a tp group of all ranks, and compares outputs and gradients (the input's, and the
// weight shard's against the matching slice of the full weight's gradient).
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "runtime/base/error.h"
#include "runtime/distributed/process_group.h"
#include "runtime/distributed/tensor_parallel.h"

using namespace lopa;

namespace {

ProcessGroup& group() {
  static ProcessGroup pg = [] {
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return ProcessGroup::init(n, "cpu");  // tp = every rank
  }();
  return pg;
}

Communicator& tpg() { return *group().tp; }

// This rank's [begin, end) of n.
tp::Range mine(int64_t n) { return tp::shard_range(n, tpg().rank(), tpg().size(), "test"); }

at::Tensor rows(const at::Tensor& w, int64_t n) {
  auto r = mine(n);
  return w.narrow(0, r.begin, r.size());
}
at::Tensor cols(const at::Tensor& w, int64_t n) {
  auto r = mine(n);
  return w.narrow(-1, r.begin, r.size());
}

void expect_close(const at::Tensor& got, const at::Tensor& want, double rtol = 1e-5, double atol = 1e-6) {
  ASSERT_TRUE(got.defined());
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_TRUE(at::allclose(got.to(at::kDouble), want.to(at::kDouble), rtol, atol))
      << "max |diff| = " << (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
}

constexpr int64_t kD = 24, kF = 36;  // features: divisible by 1, 2, 3, 4

}  // namespace

TEST(TensorParallel, CopyToAndReduceFromRegions) {
  auto& g = tpg();
  // y = Σ_r (copy_to(x) · (r+1)) = x · Σ(r+1); d loss / dx = c · Σ(r+1) where loss = Σ c ⊙ y.
  torch::manual_seed(1);
  at::Tensor x = torch::randn({3, 5}, torch::requires_grad());
  at::Tensor c = torch::randn({3, 5});
  at::Tensor y = tp::reduce_from_region(tp::copy_to_region(x, g) * double(g.rank() + 1), g);
  const double s = g.size() * (g.size() + 1) / 2.0;
  expect_close(y, x.detach() * s);
  (y * c).sum().backward();
  expect_close(x.grad(), c * s);
}

TEST(TensorParallel, GatherAndScatterRegionsAreInverse) {
  auto& g = tpg();
  torch::manual_seed(2);
  at::Tensor x = torch::randn({2, 3, kD}, torch::requires_grad());
  at::Tensor c = torch::randn({2, 3, kD});
  at::Tensor part = tp::scatter_to_region(x, g);  // [2, 3, kD/tp]
  expect_close(part, cols(x.detach(), kD));
  at::Tensor whole = tp::gather_from_region(part * 2.0, g);
  expect_close(whole, x.detach() * 2.0);
  // gather's backward keeps the local slice, scatter's backward gathers it: d/dx Σ c ⊙ 2x = 2c.
  (whole * c).sum().backward();
  expect_close(x.grad(), c * 2.0);
}

TEST(TensorParallel, ColumnParallelLinearFrozenAndTrainable) {
  auto& g = tpg();
  torch::manual_seed(3);
  const at::Tensor w = torch::randn({kF, kD}), b = torch::randn({kF});
  at::Tensor x_ref = torch::randn({2, 5, kD}, torch::requires_grad());
  const at::Tensor c = torch::randn({2, 5, kF});
  at::Tensor y_ref = at::linear(x_ref, w, b);
  (y_ref * c).sum().backward();

  for (bool gather : {false, true}) {
    at::Tensor x = x_ref.detach().clone().requires_grad_();
    const at::Tensor w_shard = rows(w, kF), b_shard = rows(b, kF);  // frozen: requires_grad false
    at::Tensor y = tp::column_parallel_linear(x, w_shard, b_shard, g, gather);
    expect_close(y, gather ? y_ref.detach() : cols(y_ref.detach(), kF));
    // Each rank's loss covers its output slice (gathered: the whole output, whose backward keeps the
    // local slice); the copy-to region sums the input-gradient parts of all ranks.
    (y * (gather ? c : cols(c, kF))).sum().backward();
    expect_close(x.grad(), x_ref.grad());
    EXPECT_FALSE(w_shard.grad().defined());  // frozen: no weight gradient formed
  }
  // Trainable shard: its gradient is the slice of the full weight's gradient.
  at::Tensor w_full = w.clone().requires_grad_();
  at::Tensor x2 = x_ref.detach().clone();
  (at::linear(x2, w_full) * c).sum().backward();
  at::Tensor w_shard = rows(w, kF).clone().requires_grad_();
  (tp::column_parallel_linear(x2, w_shard, at::Tensor(), g, false) * cols(c, kF)).sum().backward();
  expect_close(w_shard.grad(), rows(w_full.grad(), kF));
}

TEST(TensorParallel, RowParallelLinearAddsBiasOnce) {
  auto& g = tpg();
  torch::manual_seed(4);
  const at::Tensor w = torch::randn({kD, kF}), b = torch::randn({kD});
  at::Tensor x_ref = torch::randn({4, kF}, torch::requires_grad());
  const at::Tensor c = torch::randn({4, kD});
  at::Tensor y_ref = at::linear(x_ref, w, b);
  (y_ref * c).sum().backward();

  at::Tensor x = x_ref.detach().clone().requires_grad_();
  at::Tensor y = tp::row_parallel_linear(tp::scatter_to_region(x, g), cols(w, kF), b, g);
  expect_close(y, y_ref.detach());
  (y * c).sum().backward();
  // Every rank's loss is the whole loss, and scatter's backward gathers: x's gradient is exact.
  expect_close(x.grad(), x_ref.grad());
}

TEST(TensorParallel, MegatronMlpBlockMatchesDense) {
  auto& g = tpg();
  torch::manual_seed(5);
  const at::Tensor w1 = torch::randn({kF, kD}) * 0.2, w2 = torch::randn({kD, kF}) * 0.2;
  at::Tensor x_ref = torch::randn({3, 7, kD}, torch::requires_grad());
  const at::Tensor c = torch::randn({3, 7, kD});
  at::Tensor y_ref = at::linear(at::gelu(at::linear(x_ref, w1)), w2);
  (y_ref * c).sum().backward();

  at::Tensor x = x_ref.detach().clone().requires_grad_();
  at::Tensor h = tp::column_parallel_linear(x, rows(w1, kF), at::Tensor(), g, false);  // [3, 7, kF/tp]
  at::Tensor y = tp::row_parallel_linear(at::gelu(h), cols(w2, kF), at::Tensor(), g);
  expect_close(y, y_ref.detach());
  (y * c).sum().backward();
  expect_close(x.grad(), x_ref.grad());
}

TEST(TensorParallel, VocabParallelEmbedding) {
  auto& g = tpg();
  torch::manual_seed(6);
  const int64_t vocab = 48;
  const at::Tensor w = torch::randn({vocab, kD});
  const at::Tensor ids = torch::randint(0, vocab, {3, 9}, at::kLong);
  const at::Tensor c = torch::randn({3, 9, kD});
  at::Tensor w_full = w.clone().requires_grad_();
  at::Tensor ref = at::embedding(w_full, ids);
  (ref * c).sum().backward();

  const auto r = mine(vocab);
  at::Tensor frozen = rows(w, vocab);
  expect_close(tp::vocab_parallel_embedding(ids, frozen, r.begin, g), ref.detach());
  at::Tensor shard = rows(w, vocab).clone().requires_grad_();
  at::Tensor out = tp::vocab_parallel_embedding(ids, shard, r.begin, g);
  (out * c).sum().backward();
  expect_close(shard.grad(), rows(w_full.grad(), vocab));
}

TEST(TensorParallel, VocabParallelCrossEntropyEqualsFullCrossEntropy) {
  auto& g = tpg();
  const int64_t vocab = 48;
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    for (double scale : {1.0, 300.0}) {  // large logits: needs the max subtraction
      torch::manual_seed(7);
      at::Tensor logits = (torch::randn({2, 6, vocab}) * scale).to(dtype);
      at::Tensor targets = torch::randint(0, vocab, {2, 6}, at::kLong);
      targets[0][1] = -100;
      targets[1][5] = -100;
      at::Tensor full = logits.to(at::kFloat).clone().requires_grad_();
      at::Tensor ref = at::cross_entropy_loss(full.view({-1, vocab}), targets.view({-1}), {}, at::Reduction::Mean, -100);
      ref.backward();
      at::Tensor ref_tok = at::cross_entropy_loss(full.detach().view({-1, vocab}), targets.view({-1}), {},
                                                  at::Reduction::None, -100);

      at::Tensor shard = cols(logits, vocab).clone().requires_grad_();
      at::Tensor loss = tp::vocab_parallel_cross_entropy(shard, targets, mine(vocab).begin, g);
      EXPECT_EQ(loss.dim(), 0);
      expect_close(loss, ref.detach(), 1e-5, 1e-5);
      expect_close(tp::vocab_parallel_cross_entropy_per_token(shard.detach(), targets, mine(vocab).begin, g),
                   ref_tok.view({2, 6}), 1e-5, 1e-5);
      loss.backward();
      EXPECT_EQ(shard.grad().scalar_type(), dtype);
      const double tol = dtype == at::kBFloat16 ? 1e-2 : 1e-5;  // bf16: one rounding of the gradient
      expect_close(shard.grad(), cols(full.grad(), vocab), tol, 1e-6);
    }
  }
}

TEST(TensorParallel, CrossEntropyIgnoreIndexInsideTheVocabulary) {
  auto& g = tpg();
  torch::manual_seed(8);
  const int64_t vocab = 24;
  at::Tensor logits = torch::randn({10, vocab});
  at::Tensor targets = torch::randint(0, vocab, {10}, at::kLong);
  targets[3] = 0;
  targets[7] = 0;  // ignore_index = 0, a real id of rank 0's slice
  at::Tensor full = logits.clone().requires_grad_();
  at::Tensor ref = at::cross_entropy_loss(full, targets, {}, at::Reduction::Mean, 0);
  ref.backward();
  at::Tensor shard = cols(logits, vocab).clone().requires_grad_();
  at::Tensor loss = tp::vocab_parallel_cross_entropy(shard, targets, mine(vocab).begin, g, /*ignore_index=*/0);
  loss.backward();
  expect_close(loss, ref.detach());
  expect_close(shard.grad(), cols(full.grad(), vocab));
}

TEST(TensorParallel, GroupedQueryAttentionSplitByHeads) {
  // 4 query heads over 1 or 2 KV heads; with fewer KV heads than ranks the KV head is replicated.
  auto& g = tpg();
  const int64_t heads = 4, hd = 6, d = heads * hd, T = 5;
  if (heads % g.size()) GTEST_SKIP() << "tp " << g.size() << " does not divide " << heads << " heads";
  for (int64_t kv : {1, 2}) {
    if (kv % g.size() && g.size() % kv) continue;
    torch::manual_seed(9);
    const at::Tensor wq = torch::randn({d, d}) * 0.3, wk = torch::randn({kv * hd, d}) * 0.3,
                     wv = torch::randn({kv * hd, d}) * 0.3, wo = torch::randn({d, d}) * 0.3;
    const at::Tensor c = torch::randn({2, T, d});
    // Dense reference: q heads h attend to kv head h / (heads / kv), causal.
    auto attention = [&](const at::Tensor& x, const at::Tensor& q_w, const at::Tensor& k_w, const at::Tensor& v_w,
                         int64_t nq, int64_t nkv) {
      auto q = at::linear(x, q_w).view({2, T, nq, hd}).transpose(1, 2);
      auto k = at::linear(x, k_w).view({2, T, nkv, hd}).transpose(1, 2).repeat_interleave(nq / nkv, 1);
      auto v = at::linear(x, v_w).view({2, T, nkv, hd}).transpose(1, 2).repeat_interleave(nq / nkv, 1);
      auto s = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(hd));
      s = s.masked_fill(at::ones({T, T}, at::kBool).triu(1), -INFINITY);
      return at::matmul(at::softmax(s, -1), v).transpose(1, 2).reshape({2, T, nq * hd});
    };
    torch::manual_seed(10);
    at::Tensor x_ref = torch::randn({2, T, d}, torch::requires_grad());
    at::Tensor y_ref = at::linear(attention(x_ref, wq, wk, wv, heads, kv), wo);
    (y_ref * c).sum().backward();

    const auto qh = tp::shard_range(heads, g.rank(), g.size(), "q heads");
    const auto kh = tp::kv_head_range(heads, kv, g.rank(), g.size());
    at::Tensor x = x_ref.detach().clone().requires_grad_();
    at::Tensor xin = tp::copy_to_region(x, g);
    at::Tensor o = attention(xin, wq.narrow(0, qh.begin * hd, qh.size() * hd), wk.narrow(0, kh.begin * hd, kh.size() * hd),
                             wv.narrow(0, kh.begin * hd, kh.size() * hd), qh.size(), kh.size());
    at::Tensor y = tp::row_parallel_linear(o, wo.narrow(1, qh.begin * hd, qh.size() * hd), at::Tensor(), g);
    expect_close(y, y_ref.detach());
    (y * c).sum().backward();
    expect_close(x.grad(), x_ref.grad());
  }
}

TEST(TensorParallel, ShardRanges) {
  EXPECT_EQ(tp::shard_range(12, 2, 3, "x").begin, 8);
  EXPECT_EQ(tp::shard_range(12, 2, 3, "x").end, 12);
  EXPECT_THROW(tp::shard_range(10, 0, 3, "x"), lopa::Error);
  // 8 query heads, 2 KV heads, tp 4: ranks 0,1 share KV head 0, ranks 2,3 share KV head 1.
  for (int r = 0; r < 4; ++r) {
    const auto k = tp::kv_head_range(8, 2, r, 4);
    EXPECT_EQ(k.begin, r / 2);
    EXPECT_EQ(k.size(), 1);
  }
  // 8 query heads, 4 KV heads, tp 2: KV heads split [0,2), [2,4).
  EXPECT_EQ(tp::kv_head_range(8, 4, 1, 2).begin, 2);
  EXPECT_EQ(tp::kv_head_range(8, 4, 1, 2).end, 4);
  EXPECT_THROW(tp::kv_head_range(12, 3, 0, 4), lopa::Error);  // tp 4 vs 3 KV heads: neither divides
}
