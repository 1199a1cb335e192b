// The NCCL backend on CUDA tensors, checked against values computed on the CPU. Skips without a CUDA
// LibTorch built with NCCL or without a visible GPU. NCCL refuses two ranks on one GPU, so on a
// one-GPU machine this runs at np 1 (wiring, dtypes, layouts, streams); with more GPUs, at np = #GPUs.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "runtime/distributed/data_parallel.h"
#include "runtime/base/error.h"
#include "runtime/distributed/process_group.h"
#include "runtime/distributed/tensor_parallel.h"
#ifdef LOPA_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "runtime/distributed/nccl_communicator.h"
#endif

using namespace lopa;

#ifdef LOPA_WITH_NCCL
namespace {

c10::Device my_gpu() { return resolve_device("cuda", local_rank_of_process()); }

std::shared_ptr<Communicator> nccl_world() {
  MPI_Comm c;
  MPI_Comm_dup(MPI_COMM_WORLD, &c);
  return make_nccl_communicator(c, "test", my_gpu());
}

at::Tensor input_of(int r, at::ScalarType dtype) {
  at::Tensor base = at::arange(12, at::kDouble).view({3, 4});
  if (at::isFloatingType(dtype)) return (base * 0.37 + r * 1.13 - 2.0).to(dtype);
  if (dtype == at::kBool) return ((base + r).fmod(3) == 0);
  return (base * (r + 1) + r).fmod(7).to(dtype);
}

}  // namespace

#define NEED_GPU()                                                                   \
  do {                                                                               \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible";       \
  } while (0)

TEST(Nccl, AllReduceEveryDtypeOnTheCurrentStream) {
  NEED_GPU();
  auto comm = nccl_world();
  EXPECT_EQ(comm->backend(), "nccl");
  const c10::Device gpu = my_gpu();
  c10::cuda::CUDAGuard guard(gpu);
  // A side stream as the current stream: the collective must be ordered on it.
  c10::cuda::CUDAStreamGuard stream_guard(c10::cuda::getStreamFromPool(false, gpu.index()));
  for (auto dtype : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16, at::kLong, at::kInt, at::kChar, at::kByte,
                     at::kBool}) {
    for (auto op : {ReduceOp::Sum, ReduceOp::Max}) {
      at::Tensor t = input_of(comm->rank(), dtype).to(gpu);
      comm->all_reduce(t, op);
      at::Tensor expected = input_of(0, dtype).to(at::kDouble);
      for (int r = 1; r < comm->size(); ++r) {
        const at::Tensor x = input_of(r, dtype).to(at::kDouble);
        expected = dtype == at::kBool ? expected.logical_or(x).to(at::kDouble)
                   : op == ReduceOp::Sum ? expected + x
                                         : at::maximum(expected, x);
      }
      const double tol = (dtype == at::kHalf || dtype == at::kBFloat16) ? 5e-2 : 1e-6;
      EXPECT_TRUE(at::allclose(t.cpu().to(at::kDouble), expected.to(dtype).to(at::kDouble), tol, tol))
          << c10::toString(dtype);
    }
  }
  at::Tensor f = input_of(comm->rank(), at::kFloat).to(gpu);
  comm->all_reduce(f, ReduceOp::Avg);
  at::Tensor mean = at::zeros({3, 4});
  for (int r = 0; r < comm->size(); ++r) mean += input_of(r, at::kFloat);
  EXPECT_TRUE(at::allclose(f.cpu(), mean / comm->size(), 1e-5, 1e-5));
  at::Tensor i = at::ones({2}, at::TensorOptions().dtype(at::kLong).device(gpu));
  EXPECT_THROW(comm->all_reduce(i, ReduceOp::Avg), lopa::Error);
  // Non-contiguous: written through the caller's view.
  at::Tensor base = input_of(comm->rank(), at::kFloat).t().contiguous().to(gpu);
  at::Tensor view = base.t();
  comm->all_reduce(view);
  at::Tensor sum = at::zeros({3, 4});
  for (int r = 0; r < comm->size(); ++r) sum += input_of(r, at::kFloat);
  EXPECT_TRUE(at::allclose(base.cpu().t(), sum, 1e-5, 1e-5));
}

TEST(Nccl, GatherScatterBroadcastBarrier) {
  NEED_GPU();
  auto comm = nccl_world();
  const c10::Device gpu = my_gpu();
  const int n = comm->size();
  for (int64_t dim : {0, 1, -1}) {
    std::vector<at::Tensor> all;
    for (int r = 0; r < n; ++r) all.push_back(input_of(r, at::kBFloat16));
    at::Tensor got = comm->all_gather(input_of(comm->rank(), at::kBFloat16).to(gpu).t().contiguous().t(), dim);
    EXPECT_TRUE(at::equal(got.cpu(), at::cat(all, dim))) << "dim " << dim;
  }
  auto big = [&](int r) { return at::arange(2 * 4 * n * 3, at::kFloat).view({2, 4 * n, 3}) * 0.5 + r; };
  at::Tensor rs = comm->reduce_scatter(big(comm->rank()).to(gpu), 1, ReduceOp::Sum);
  at::Tensor full = at::zeros({2, 4 * n, 3});
  for (int r = 0; r < n; ++r) full += big(r);
  EXPECT_TRUE(at::allclose(rs.cpu(), full.narrow(1, 4 * comm->rank(), 4), 1e-5, 1e-5));
  at::Tensor b = input_of(comm->rank(), at::kHalf).to(gpu);
  comm->broadcast(b, n - 1);
  EXPECT_TRUE(at::equal(b.cpu(), input_of(n - 1, at::kHalf)));
  // CPU tensors on an NCCL communicator go to its MPI twin.
  at::Tensor c = input_of(comm->rank(), at::kFloat);
  comm->all_reduce(c);
  at::Tensor c_sum = at::zeros({3, 4});
  for (int r = 0; r < n; ++r) c_sum += input_of(r, at::kFloat);
  EXPECT_FALSE(c.is_cuda());
  EXPECT_TRUE(at::allclose(c, c_sum, 1e-5, 1e-5));
  comm->barrier();
}

TEST(Nccl, ProcessGroupOnCudaUsesNcclAndTpLayersMatchDense) {
  NEED_GPU();
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  ProcessGroup pg = ProcessGroup::init(n, "cuda");
  EXPECT_TRUE(pg.device.is_cuda());
  if (n > 1) EXPECT_EQ(pg.tp->backend(), "nccl");
  auto& g = *pg.tp;
  const int64_t d = 16, f = 32;
  torch::manual_seed(3);
  const auto opt = at::TensorOptions().device(pg.device);
  const at::Tensor w1 = torch::randn({f, d}, opt) * 0.3, w2 = torch::randn({d, f}, opt) * 0.3;
  at::Tensor x_ref = torch::randn({4, d}, opt).requires_grad_();
  at::Tensor y_ref = at::linear(at::gelu(at::linear(x_ref, w1)), w2);
  y_ref.sum().backward();
  const auto r = tp::shard_range(f, g.rank(), g.size(), "mlp");
  at::Tensor x = x_ref.detach().clone().requires_grad_();
  at::Tensor h = tp::column_parallel_linear(x, w1.narrow(0, r.begin, r.size()), at::Tensor(), g, false);
  at::Tensor y = tp::row_parallel_linear(at::gelu(h), w2.narrow(1, r.begin, r.size()), at::Tensor(), g);
  y.sum().backward();
  EXPECT_TRUE(at::allclose(y.cpu(), y_ref.detach().cpu(), 1e-4, 1e-5));
  EXPECT_TRUE(at::allclose(x.grad().cpu(), x_ref.grad().cpu(), 1e-4, 1e-5));
  // Vocab-parallel cross-entropy on the GPU.
  const int64_t vocab = 8 * g.size();
  at::Tensor logits = torch::randn({6, vocab}, opt);
  at::Tensor targets = torch::randint(0, vocab, {6}, at::TensorOptions().dtype(at::kLong).device(pg.device));
  const auto vr = tp::shard_range(vocab, g.rank(), g.size(), "vocab");
  at::Tensor ce = tp::vocab_parallel_cross_entropy(logits.narrow(1, vr.begin, vr.size()), targets, vr.begin, g);
  EXPECT_NEAR(ce.item<float>(), at::cross_entropy_loss(logits, targets).item<float>(), 1e-4);
  // Data-parallel gradient averaging of CUDA parameters.
  at::Tensor p = torch::full({5}, double(pg.dp_rank + 1), opt).requires_grad_();
  (p * 2).sum().backward();
  DataParallel dp(pg.dp, {p});
  dp.broadcast_parameters();
  dp.average_gradients();
  EXPECT_TRUE(at::allclose(p.detach().cpu(), at::ones({5})));
  EXPECT_TRUE(at::allclose(p.grad().cpu(), at::full({5}, 2.0)));
}

#else
TEST(Nccl, NotBuilt) { GTEST_SKIP() << "lopa_runtime was built without NCCL (CPU-only LibTorch)"; }
#endif
