// Data parallelism: training over dp ranks, each on its shard of the global batch, must give the same
// parameters as one process on the whole global batch. The one-process reference runs on every rank
// (same seed), so each rank checks its own replica against it.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "runtime/distributed/data_parallel.h"
#include "runtime/base/error.h"
#include "runtime/distributed/process_group.h"
#include "runtime/distributed/tensor_parallel.h"

using namespace lopa;

namespace {

int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// A small trainable model: a soft prompt p [d] added to every input row, then a linear map W [k, d]
// (f32) and a scale s [1] (f64, so that buckets of two dtypes exist). Loss: mean CE over the batch.
struct Params {
  at::Tensor p, w, s;
  std::vector<at::Tensor> list() const { return {p, w, s}; }
};

Params init_params(uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({8}).requires_grad_(), (torch::randn({5, 8}) * 0.3).requires_grad_(),
          torch::ones({1}, at::kDouble).requires_grad_()};
}

at::Tensor loss_of(const Params& m, const at::Tensor& x, const at::Tensor& y) {
  at::Tensor logits = at::linear(x + m.p, m.w) * m.s.to(at::kFloat);
  return at::cross_entropy_loss(logits, y);
}

struct Data {
  at::Tensor x, y;
};
Data batch(int64_t n, int step) {
  torch::manual_seed(1000 + step);
  return {torch::randn({n, 8}), torch::randint(0, 5, {n}, at::kLong)};
}

// `steps` Adam steps on the whole global batch, in one process.
Params train_reference(int64_t global, int steps) {
  Params m = init_params(1);
  torch::optim::Adam opt(m.list(), torch::optim::AdamOptions(0.05));
  for (int s = 0; s < steps; ++s) {
    Data d = batch(global, s);
    opt.zero_grad();
    loss_of(m, d.x, d.y).backward();
    opt.step();
  }
  return m;
}

void expect_same(const Params& a, const Params& b) {
  for (size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(at::allclose(a.list()[i], b.list()[i], 1e-5, 1e-6))
        << "parameter " << i << " max |diff| "
        << (a.list()[i] - b.list()[i]).abs().max().item<double>();
}

}  // namespace

TEST(DataParallel, BatchShardsAreDisjointAndCoverTheBatch) {
  // Hand-derived: 7 over 3 → 3, 2, 2.
  EXPECT_EQ(batch_shard(7, 0, 3).begin, 0);
  EXPECT_EQ(batch_shard(7, 0, 3).end, 3);
  EXPECT_EQ(batch_shard(7, 1, 3).begin, 3);
  EXPECT_EQ(batch_shard(7, 1, 3).end, 5);
  EXPECT_EQ(batch_shard(7, 2, 3).begin, 5);
  EXPECT_EQ(batch_shard(7, 2, 3).end, 7);
  for (int64_t n : {4, 5, 9, 16})
    for (int size : {1, 2, 3, 4}) {
      int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        auto s = batch_shard(n, r, size);
        EXPECT_EQ(s.begin, next);
        EXPECT_GE(s.size(), n / size);
        EXPECT_LE(s.size(), n / size + 1);
        next = s.end;
      }
      EXPECT_EQ(next, n);
    }
  EXPECT_THROW(batch_shard(2, 0, 3), lopa::Error);
  at::Tensor g = at::arange(7);
  EXPECT_TRUE(at::equal(shard_batch(g, 1, 3), at::arange(3, 5)));
}

TEST(DataParallel, BroadcastTakesRankZerosParameters) {
  ProcessGroup pg = ProcessGroup::init(1, "cpu");
  Params m = init_params(1 + pg.dp_rank);  // replicas start different
  DataParallel dp(pg.dp, m.list());
  dp.broadcast_parameters();
  expect_same(m, init_params(1));
  EXPECT_FALSE(m.p.grad().defined());
}

TEST(DataParallel, UpdatesEqualOneProcessWithTheGlobalBatch) {
  ProcessGroup pg = ProcessGroup::init(1, "cpu");
  const int64_t global = 4 * pg.dp_size;  // equal shards: plain averaging
  const int steps = 3;
  Params m = init_params(1 + pg.dp_rank);
  DataParallel dp(pg.dp, m.list(), /*bucket_bytes=*/64);  // tiny buckets: several collectives
  EXPECT_GE(dp.num_buckets(), 3);                          // p and w split, s (f64) alone
  dp.broadcast_parameters();
  torch::optim::Adam opt(m.list(), torch::optim::AdamOptions(0.05));
  for (int s = 0; s < steps; ++s) {
    Data d = batch(global, s);
    opt.zero_grad();
    loss_of(m, shard_batch(d.x, pg.dp_rank, pg.dp_size), shard_batch(d.y, pg.dp_rank, pg.dp_size)).backward();
    dp.average_gradients();
    opt.step();
  }
  expect_same(m, train_reference(global, steps));
}

TEST(DataParallel, UnevenShardsWithWeightedGradients) {
  ProcessGroup pg = ProcessGroup::init(1, "cpu");
  const int64_t global = 4 * pg.dp_size + 1;  // the first rank gets one more example
  const int steps = 3;
  Params m = init_params(1);
  DataParallel dp(pg.dp, m.list());
  EXPECT_EQ(dp.num_buckets(), 2);  // one per dtype
  torch::optim::Adam opt(m.list(), torch::optim::AdamOptions(0.05));
  for (int s = 0; s < steps; ++s) {
    Data d = batch(global, s);
    const BatchShard mine = batch_shard(global, pg.dp_rank, pg.dp_size);
    opt.zero_grad();
    loss_of(m, d.x.narrow(0, mine.begin, mine.size()), d.y.narrow(0, mine.begin, mine.size())).backward();
    dp.average_gradients_weighted(static_cast<double>(mine.size()));
    opt.step();
  }
  expect_same(m, train_reference(global, steps));
}

// tp × dp on one grid: a frozen two-layer MLP sharded over the tp group (column then row parallel),
// a trainable soft prompt replicated and averaged over dp. Equals one process on the global batch.
TEST(DataParallel, GridTpTimesDpEqualsOneProcess) {
  const int tp = world_size() % 2 == 0 ? 2 : 1;
  ProcessGroup pg = ProcessGroup::init(tp, "cpu");
  const int64_t d = 8, f = 12, k = 6, global = 3 * pg.dp_size, steps = 2;
  torch::manual_seed(77);
  const at::Tensor w1 = torch::randn({f, d}) * 0.4, w2 = torch::randn({k, f}) * 0.4;  // frozen FM
  const auto fr = tp::shard_range(f, pg.tp_rank, pg.tp_size, "mlp");
  const at::Tensor w1_shard = w1.narrow(0, fr.begin, fr.size()), w2_shard = w2.narrow(1, fr.begin, fr.size());

  auto run = [&](bool sharded) {
    torch::manual_seed(5);
    at::Tensor prompt = (torch::randn({d}) * 0.1).requires_grad_();
    torch::optim::SGD opt({prompt}, torch::optim::SGDOptions(0.5));
    DataParallel dp(sharded ? pg.dp : make_self_communicator(), {prompt});
    for (int s = 0; s < steps; ++s) {
      Data b = batch(global, s);
      at::Tensor x = b.x, y = b.y.remainder(k);
      if (sharded) {
        x = shard_batch(x, pg.dp_rank, pg.dp_size);
        y = shard_batch(y, pg.dp_rank, pg.dp_size);
      }
      opt.zero_grad();
      at::Tensor h = sharded ? tp::column_parallel_linear(x + prompt, w1_shard, at::Tensor(), *pg.tp, false)
                             : at::linear(x + prompt, w1);
      at::Tensor logits = sharded ? tp::row_parallel_linear(at::relu(h), w2_shard, at::Tensor(), *pg.tp)
                                  : at::linear(at::relu(h), w2);
      at::cross_entropy_loss(logits, y).backward();
      dp.average_gradients();
      opt.step();
    }
    return prompt.detach();
  };
  const at::Tensor got = run(true), want = run(false);
  EXPECT_TRUE(at::allclose(got, want, 1e-5, 1e-6)) << (got - want).abs().max().item<double>();
}
