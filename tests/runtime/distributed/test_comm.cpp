// Collectives of the MPI backend and the process-group grid, at any world size (1 under plain CTest,
// 2 and 3 under mpirun). Every rank can compute every other rank's input, so each expected value
// is built locally from plain tensor ops, independently of the communicator.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "runtime/base/error.h"
#include "runtime/distributed/failure.h"
#include "runtime/distributed/mpi_communicator.h"
#include "runtime/distributed/process_group.h"

using namespace lopa;

namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int s = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

// An MPI communicator over all ranks, also at world size 1 (where ProcessGroup would use "self").
std::shared_ptr<Communicator> mpi_world() {
  MPI_Comm c;
  MPI_Comm_dup(MPI_COMM_WORLD, &c);
  return make_mpi_communicator(c, "test");
}

// Rank r's input: distinct per rank, not integer-valued for float dtypes, shape [3, 4].
at::Tensor input_of(int r, at::ScalarType dtype) {
  at::Tensor base = at::arange(12, at::kDouble).view({3, 4});
  if (at::isFloatingType(dtype)) return (base * 0.37 + r * 1.13 - 2.0).to(dtype);
  if (dtype == at::kBool) return ((base + r).fmod(3) == 0);
  return (base * (r + 1) + r).fmod(7).to(dtype);  // small: no overflow in i8/u8 sums
}

const at::ScalarType kAllDtypes[] = {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16, at::kLong,
                                     at::kInt,   at::kShort,  at::kChar, at::kByte};

}  // namespace

TEST(Comm, AllReduceSumEveryDtype) {
  auto comm = mpi_world();
  for (auto dtype : kAllDtypes) {
    at::Tensor t = input_of(comm->rank(), dtype);
    comm->all_reduce(t, ReduceOp::Sum);
    // 16-bit floats are documented to accumulate in f32 and round once.
    const auto acc = at::isFloatingType(dtype) ? at::kFloat : at::kLong;
    at::Tensor expected = at::zeros({3, 4}, acc);
    for (int r = 0; r < comm->size(); ++r) expected += input_of(r, dtype).to(acc);
    if (dtype == at::kDouble) {
      expected = at::zeros({3, 4}, at::kDouble);
      for (int r = 0; r < comm->size(); ++r) expected += input_of(r, dtype);
    }
    EXPECT_EQ(t.scalar_type(), dtype);
    EXPECT_TRUE(at::allclose(t.to(at::kDouble), expected.to(dtype).to(at::kDouble), 1e-6, 1e-6))
        << c10::toString(dtype) << "\n" << t << "\n" << expected;
  }
}

TEST(Comm, AllReduceMaxAndAvg) {
  auto comm = mpi_world();
  for (auto dtype : kAllDtypes) {
    at::Tensor t = input_of(comm->rank(), dtype);
    comm->all_reduce(t, ReduceOp::Max);
    at::Tensor expected = input_of(0, dtype).to(at::kDouble);
    for (int r = 1; r < comm->size(); ++r) expected = at::maximum(expected, input_of(r, dtype).to(at::kDouble));
    EXPECT_TRUE(at::equal(t.to(at::kDouble), expected)) << c10::toString(dtype);
  }
  for (auto dtype : {at::kFloat, at::kDouble, at::kBFloat16}) {
    at::Tensor t = input_of(comm->rank(), dtype);
    comm->all_reduce(t, ReduceOp::Avg);
    at::Tensor expected = at::zeros({3, 4}, at::kFloat);
    for (int r = 0; r < comm->size(); ++r) expected += input_of(r, dtype).to(at::kFloat);
    expected /= comm->size();
    EXPECT_TRUE(at::allclose(t.to(at::kFloat), expected.to(dtype).to(at::kFloat), 1e-5, 1e-5)) << c10::toString(dtype);
  }
  at::Tensor i = input_of(comm->rank(), at::kLong);
  EXPECT_THROW(comm->all_reduce(i, ReduceOp::Avg), lopa::Error);
}

TEST(Comm, BoolReductionsAreLogicalOr) {
  auto comm = mpi_world();
  for (auto op : {ReduceOp::Sum, ReduceOp::Max}) {
    at::Tensor t = input_of(comm->rank(), at::kBool);
    comm->all_reduce(t, op);
    at::Tensor expected = at::zeros({3, 4}, at::kBool);
    for (int r = 0; r < comm->size(); ++r) expected = expected.logical_or(input_of(r, at::kBool));
    EXPECT_TRUE(at::equal(t, expected));
  }
}

TEST(Comm, AllReduceNonContiguousWritesThroughTheView) {
  auto comm = mpi_world();
  at::Tensor base = input_of(comm->rank(), at::kFloat).t().contiguous();  // [4, 3]
  at::Tensor view = base.t();                                             // [3, 4], non-contiguous
  ASSERT_FALSE(view.is_contiguous());
  comm->all_reduce(view, ReduceOp::Sum);
  at::Tensor expected = at::zeros({3, 4});
  for (int r = 0; r < comm->size(); ++r) expected += input_of(r, at::kFloat);
  EXPECT_TRUE(at::allclose(view, expected));
  EXPECT_TRUE(at::allclose(base, expected.t()));  // the caller's storage holds the result
}

TEST(Comm, AllGatherAlongEveryDim) {
  auto comm = mpi_world();
  for (auto dtype : {at::kFloat, at::kBFloat16, at::kLong, at::kBool}) {
    for (int64_t dim : {0, 1, -1}) {
      // Non-contiguous input: a transposed [4, 3] → [3, 4] view.
      at::Tensor mine = input_of(comm->rank(), dtype).t().contiguous().t();
      at::Tensor got = comm->all_gather(mine, dim);
      std::vector<at::Tensor> all;
      for (int r = 0; r < comm->size(); ++r) all.push_back(input_of(r, dtype));
      EXPECT_TRUE(at::equal(got, at::cat(all, dim))) << c10::toString(dtype) << " dim " << dim;
    }
  }
  // 3-d, middle dim.
  at::Tensor x = at::arange(24, at::kFloat).view({2, 3, 4}) + 100 * comm->rank();
  std::vector<at::Tensor> all;
  for (int r = 0; r < comm->size(); ++r) all.push_back(at::arange(24, at::kFloat).view({2, 3, 4}) + 100 * r);
  EXPECT_TRUE(at::equal(comm->all_gather(x, 1), at::cat(all, 1)));
}

TEST(Comm, ReduceScatterAlongDim) {
  auto comm = mpi_world();
  const int n = comm->size();
  auto input = [&](int r, at::ScalarType dtype) {
    return (at::arange(2 * 4 * n * 3, at::kDouble).view({2, 4 * n, 3}) * 0.25 + r).to(dtype);
  };
  for (auto dtype : {at::kFloat, at::kDouble, at::kBFloat16, at::kInt}) {
    for (auto op : {ReduceOp::Sum, ReduceOp::Max}) {
      at::Tensor got = comm->reduce_scatter(input(comm->rank(), dtype), 1, op);
      at::Tensor full = input(0, dtype).to(at::kDouble);
      for (int r = 1; r < n; ++r) {
        const at::Tensor x = input(r, dtype).to(at::kDouble);
        full = op == ReduceOp::Sum ? full + x : at::maximum(full, x);
      }
      const at::Tensor expected = full.narrow(1, 4 * comm->rank(), 4).to(dtype);
      ASSERT_EQ(got.sizes(), expected.sizes());
      EXPECT_TRUE(at::allclose(got.to(at::kDouble), expected.to(at::kDouble))) << c10::toString(dtype);
    }
  }
  at::Tensor avg = comm->reduce_scatter(input(comm->rank(), at::kFloat), -2, ReduceOp::Avg);
  at::Tensor mean = at::zeros({2, 4 * n, 3}, at::kDouble);
  for (int r = 0; r < n; ++r) mean += input(r, at::kDouble);
  EXPECT_TRUE(at::allclose(avg.to(at::kDouble), (mean / n).narrow(1, 4 * comm->rank(), 4), 1e-6, 1e-6));
  // A dim that does not split evenly is refused (on every rank, before any exchange).
  if (n > 1) {
    EXPECT_THROW(comm->reduce_scatter(at::ones({2, 4 * n + 1}), 1), lopa::Error);
  }
}

TEST(Comm, BroadcastFromLastRank) {
  auto comm = mpi_world();
  const int root = comm->size() - 1;
  for (auto dtype : {at::kFloat, at::kHalf, at::kLong, at::kBool, at::kByte}) {
    at::Tensor base = input_of(comm->rank(), dtype).t().contiguous();
    at::Tensor view = base.t();
    comm->broadcast(view, root);
    EXPECT_TRUE(at::equal(view, input_of(root, dtype))) << c10::toString(dtype);
  }
  at::Tensor t = at::ones({2});
  EXPECT_THROW(comm->broadcast(t, comm->size()), lopa::Error);
  comm->barrier();
}

TEST(Comm, MpiErrorsNameTheCall) {
  MPI_Comm c;
  MPI_Comm_dup(MPI_COMM_WORLD, &c);
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  int x = 0;
  // An invalid root is caught by MPI's argument checks and returned, not fatal.
  try {
    mpi_check(MPI_Bcast(&x, 1, MPI_INT, world_size() + 5, c), "MPI_Bcast of the test value");
    ADD_FAILURE() << "an invalid root was accepted";
  } catch (const lopa::Error& e) {
    EXPECT_NE(std::string(e.what()).find("MPI_Bcast of the test value failed: "), std::string::npos) << e.what();
  }
  MPI_Comm_free(&c);
}

TEST(Comm, SelfCommunicatorIsIdentity) {
  auto self = make_self_communicator();
  at::Tensor t = at::arange(6, at::kFloat).view({2, 3});
  at::Tensor copy = t.clone();
  self->all_reduce(t, ReduceOp::Avg);
  EXPECT_TRUE(at::equal(t, copy));
  EXPECT_TRUE(at::equal(self->all_gather(t, 1), copy));
  EXPECT_TRUE(at::equal(self->reduce_scatter(t, 0), copy));
  at::Tensor i = at::ones({2}, at::kLong);
  EXPECT_THROW(self->all_reduce(i, ReduceOp::Avg), lopa::Error);  // same contract as MPI
}

TEST(ProcessGroupGrid, TpGroupsAreConsecutiveRanks) {
  const int n = world_size(), me = world_rank();
  for (int tp = 1; tp <= n; ++tp) {
    if (n % tp) continue;
    ProcessGroup pg = ProcessGroup::init(tp, "cpu");
    EXPECT_EQ(pg.world_rank, me);
    EXPECT_EQ(pg.world_size, n);
    EXPECT_EQ(pg.tp_size, tp);
    EXPECT_EQ(pg.dp_size, n / tp);
    EXPECT_EQ(pg.tp_rank, me % tp);
    EXPECT_EQ(pg.dp_rank, me / tp);
    EXPECT_EQ(pg.device, c10::Device(c10::kCPU));
    EXPECT_EQ(pg.tp->size(), tp);
    EXPECT_EQ(pg.dp->size(), n / tp);
    // Who is in my groups: gather world ranks over each group.
    at::Tensor id = at::full({1}, me, at::kLong);
    at::Tensor tp_members = pg.tp->all_gather(id, 0), dp_members = pg.dp->all_gather(id, 0);
    for (int i = 0; i < tp; ++i) EXPECT_EQ(tp_members[i].item<int64_t>(), (me / tp) * tp + i);
    for (int j = 0; j < n / tp; ++j) EXPECT_EQ(dp_members[j].item<int64_t>(), me % tp + j * tp);
    EXPECT_EQ(pg.tp->backend(), tp == 1 ? "self" : "mpi");
    EXPECT_NE(pg.describe().find("tp " + std::to_string(tp)), std::string::npos) << pg.describe();
  }
}

TEST(ProcessGroupGrid, RefusesATpThatDoesNotDivideTheWorld) {
  // Thrown on every rank before any exchange.
  EXPECT_THROW(ProcessGroup::init(world_size() + 1, "cpu"), lopa::Error);
  EXPECT_THROW(ProcessGroup::init(0, "cpu"), lopa::Error);
}

TEST(ProcessGroupGrid, DevicePlacement) {
  EXPECT_EQ(resolve_device("cpu", 3), c10::Device(c10::kCPU));
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(resolve_device("auto", 1), c10::Device(c10::kCPU));
    EXPECT_THROW(resolve_device("cuda", 0), lopa::Error);
  } else {
    const int n = static_cast<int>(torch::cuda::device_count());
    if (world_size() <= n)
      EXPECT_EQ(resolve_device("auto", n + 1), c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(1 % n)));
    else  // more ranks on this node than GPUs: auto falls back to the CPU, cuda is refused
      EXPECT_EQ(resolve_device("auto", 0), c10::Device(c10::kCPU));
  }
  EXPECT_THROW(resolve_device("tpu:0", 0), lopa::Error);
  // Under mpirun on one node the node-local rank is the world rank.
  if (std::getenv("OMPI_COMM_WORLD_LOCAL_RANK")) {
    EXPECT_EQ(local_rank_of_process(), world_rank());
  }
  EXPECT_EQ(ProcessGroup::init(1, "auto").local_rank, local_rank_of_process());
}

TEST(ProcessGroupGrid, RankSeedsAreDeterministicAndDistinct) {
  EXPECT_EQ(rank_seed(42, 3), rank_seed(42, 3));
  std::set<uint64_t> seen;
  for (int r = 0; r < 64; ++r) seen.insert(rank_seed(42, r));
  for (int r = 0; r < 64; ++r) seen.insert(rank_seed(43, r));
  EXPECT_EQ(seen.size(), 128u);
  // Seeding LibTorch with a rank's seed reproduces its stream.
  seed_everything(rank_seed(7, world_rank()));
  at::Tensor a = at::randn({4});
  seed_everything(rank_seed(7, world_rank()));
  EXPECT_TRUE(at::equal(a, at::randn({4})));
}

TEST(ConfigCheck, SameConfigPassesDifferentOneNamesTheRanks) {
  ProcessGroup pg = ProcessGroup::init(1, "cpu");
  EXPECT_NO_THROW(check_same_config(pg, "model = a\nlr = 0.1\n"));
  if (pg.world_size == 1) return;
  // Odd ranks differ.
  const std::string mine = pg.world_rank % 2 ? "lr = 0.2" : "lr = 0.1";
  try {
    check_same_config(pg, mine);
    ADD_FAILURE() << "different configs were accepted";
  } catch (const lopa::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(pg.world_size > 3 ? "ranks 1, 3 " : "rank 1 "), std::string::npos) << msg;
  }
  EXPECT_NE(fingerprint("lr = 0.1"), fingerprint("lr = 0.2"));
  EXPECT_EQ(fingerprint(""), 0xcbf29ce484222325ull);  // FNV-1a offset basis
}
