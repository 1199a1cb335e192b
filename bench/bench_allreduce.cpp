// All-reduce bandwidth over the world group, nccl-tests style: for each size, the time of one in-place
// sum all-reduce (max over ranks of the mean over iterations), algbw = bytes / time, and bus bandwidth
// busbw = algbw · 2(n−1)/n (the traffic per link of a ring all-reduce, comparable across n).
//   mpirun -np 2 bench_allreduce [--device cpu|cuda] [--dtype f32|bf16|f16|f64] [--min-bytes 1024]
//                                [--max-bytes 67108864] [--seconds 0.2] [--json]
// CPU tensors use the MPI backend; CUDA tensors (--device cuda) use NCCL when it was built.
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#ifdef LOPA_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "runtime/base/error.h"
#include "runtime/distributed/failure.h"
#include "runtime/distributed/mpi_runtime.h"
#include "runtime/distributed/process_group.h"

namespace {

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "f32") return at::kFloat;
  if (s == "f64") return at::kDouble;
  if (s == "bf16") return at::kBFloat16;
  if (s == "f16") return at::kHalf;
  lopa::fail("--dtype ", s, ": expected f32, f64, bf16 or f16");
}

void sync(const c10::Device& d) {
#ifdef LOPA_WITH_NCCL
  if (d.is_cuda()) c10::cuda::device_synchronize();
#endif
  (void)d;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  lopa::MpiRuntime mpi(lopa::MpiRuntime::Mode::Always, &argc, &argv);
  return lopa::run_rank([&] {
    std::string device = "cpu", dtype_name = "f32";
    int64_t min_bytes = 1024, max_bytes = int64_t(64) << 20;
    double seconds = 0.2;
    bool json = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        LOPA_CHECK(i + 1 < argc, a, ": missing value");
        return argv[++i];
      };
      if (a == "--device") device = next();
      else if (a == "--dtype") dtype_name = next();
      else if (a == "--min-bytes") min_bytes = std::stoll(next());
      else if (a == "--max-bytes") max_bytes = std::stoll(next());
      else if (a == "--seconds") seconds = std::stod(next());
      else if (a == "--json") json = true;
      else lopa::fail("bench_allreduce: unknown option ", a);
    }
    const at::ScalarType dtype = parse_dtype(dtype_name);
    lopa::ProcessGroup pg = lopa::ProcessGroup::init(1, device);
    auto& world = *pg.world;
    const int n = world.size();
    const auto options = at::TensorOptions().dtype(dtype).device(pg.device);
    if (pg.is_root() && !json)
      std::printf("# all_reduce(sum) over %d ranks, backend %s, %s, device %s\n"
                  "# %12s %10s %12s %12s %12s\n",
                  n, world.backend().c_str(), dtype_name.c_str(), pg.device.str().c_str(), "bytes", "iters",
                  "time_us", "algbw_GB/s", "busbw_GB/s");
    const int64_t esize = at::elementSize(dtype);
    for (int64_t bytes = min_bytes; bytes <= max_bytes; bytes *= 2) {
      at::Tensor t = at::zeros({bytes / esize}, options);  // zeros: repeated sums stay finite
      // Warm up, then pick the iteration count on rank 0 so that a size takes about `seconds`.
      for (int i = 0; i < 3; ++i) world.all_reduce(t);
      sync(pg.device);
      world.barrier();
      double t0 = now();
      for (int i = 0; i < 3; ++i) world.all_reduce(t);
      sync(pg.device);
      at::Tensor iters = at::full({1}, std::max<int64_t>(5, std::min<int64_t>(10000, seconds / ((now() - t0) / 3))),
                                  at::kLong);
      world.broadcast(iters, 0);
      const int64_t k = iters.item<int64_t>();
      world.barrier();
      t0 = now();
      for (int64_t i = 0; i < k; ++i) world.all_reduce(t);
      sync(pg.device);
      at::Tensor elapsed = at::full({1}, (now() - t0) / k, at::kDouble);
      world.all_reduce(elapsed, lopa::ReduceOp::Max);
      const double sec = elapsed.item<double>();
      const double algbw = bytes / sec / 1e9, busbw = algbw * 2.0 * (n - 1) / n;
      if (!pg.is_root()) continue;
      if (json)
        std::printf("{\"bench\": \"allreduce\", \"backend\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", \"ranks\": %d, "
                    "\"bytes\": %lld, \"iters\": %lld, \"time_us\": %.2f, \"algbw_gbps\": %.4f, \"busbw_gbps\": %.4f}\n",
                    world.backend().c_str(), pg.device.str().c_str(), dtype_name.c_str(), n, (long long)bytes,
                    (long long)k, sec * 1e6, algbw, busbw);
      else
        std::printf("  %12lld %10lld %12.2f %12.4f %12.4f\n", (long long)bytes, (long long)k, sec * 1e6, algbw, busbw);
      std::fflush(stdout);
    }
    return 0;
  });
}
