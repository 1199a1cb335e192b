#include "runtime/distributed/process_group.h"

#include <algorithm>
#include <cstdlib>

#include <mpi.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include "runtime/distributed/collective_watchdog.h"
#include "runtime/base/error.h"
#include "runtime/distributed/launch_env.h"
#include "runtime/distributed/mpi_communicator.h"
#include "runtime/distributed/mpi_runtime.h"
#ifdef LOPA_WITH_NCCL
#include "runtime/distributed/nccl_communicator.h"
#endif

namespace lopa {

ProcessGroup ProcessGroup::single(c10::Device device) {
  ProcessGroup pg;
  pg.world = make_self_communicator();
  pg.tp = make_self_communicator();
  pg.dp = make_self_communicator();
  pg.device = device;
  return pg;
}

c10::Device resolve_device(const std::string& spec, int local_rank) {
  if (spec == "cpu") return c10::Device(c10::kCPU);
  const bool have_cuda = torch::cuda::is_available();
  if (spec == "auto" && !have_cuda) return c10::Device(c10::kCPU);
  if (spec == "auto" || spec == "cuda") {
    LOPA_CHECK(have_cuda, "device 'cuda': this LibTorch sees no CUDA device");
    const int n = static_cast<int>(torch::cuda::device_count());
    // NCCL refuses two ranks on one GPU: with more ranks on this node than GPUs, "auto" runs on the
    // CPU (MPI) and an explicit "cuda" is an error naming the counts.
    int local_size = 1;
    for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
      if (const char* v = std::getenv(var)) {
        local_size = std::max(1, std::atoi(v));
        break;
      }
    if (local_size > n) {
      if (spec == "auto") return c10::Device(c10::kCPU);
      fail("device 'cuda': ", local_size, " ranks on this node but only ", n, " CUDA device(s); NCCL needs one GPU per rank");
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank % n));
  }
  try {
    c10::Device d(spec);
    LOPA_CHECK(!d.is_cuda() || have_cuda, "device '", spec, "': this LibTorch sees no CUDA device");
    return d;
  } catch (const c10::Error&) {
    fail("device '", spec, "' is not one of auto, cpu, cuda, cuda:N");
  }
}

int local_rank_of_process() {
  const LaunchEnv env = detect_launch_env();
  if (env.local_rank >= 0) return env.local_rank;
  if (!MpiRuntime::initialized()) return 0;
  MPI_Comm node;
  mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type (node-local ranks)");
  int r = 0;
  mpi_check(MPI_Comm_rank(node, &r), "MPI_Comm_rank (node-local ranks)");
  MPI_Comm_free(&node);
  return r;
}

namespace {

// The communicator for one group: self when alone (and the split comm is freed), else NCCL for
// CUDA devices when built, else MPI.
std::shared_ptr<Communicator> group_communicator(MPI_Comm comm, const std::string& name, const c10::Device& device,
                                                 const std::shared_ptr<CollectiveWatchdog>& watchdog) {
  int size = 1;
  mpi_check(MPI_Comm_size(comm, &size), "MPI_Comm_size (" + name + " group)");
  if (size == 1) {
    MPI_Comm_free(&comm);
    return make_self_communicator();
  }
#ifdef LOPA_WITH_NCCL
  if (device.is_cuda()) return make_nccl_communicator(comm, name, device, watchdog);
#endif
  return make_mpi_communicator(comm, name, watchdog);
}

}  // namespace

ProcessGroup ProcessGroup::init(int tp, const std::string& device) {
  LOPA_CHECK(tp >= 1, "--tp ", tp, " must be at least 1");
  if (!MpiRuntime::initialized()) {
    LOPA_CHECK(tp == 1, "--tp ", tp, " needs a multiple of ", tp, " ranks; this process was not started by mpirun/srun ",
               "(run: mpirun -np ", tp, " lopa ...)");
    return single(resolve_device(device, local_rank_of_process()));
  }
  return init(tp, resolve_device(device, local_rank_of_process()));
}

ProcessGroup ProcessGroup::init(int tp, c10::Device device) {
  LOPA_CHECK(tp >= 1, "--tp ", tp, " must be at least 1");
  if (!MpiRuntime::initialized()) {
    LOPA_CHECK(tp == 1, "--tp ", tp, " needs a multiple of ", tp, " ranks; this process was not started by mpirun/srun ",
               "(run: mpirun -np ", tp, " lopa ...)");
    return single(device);
  }
  ProcessGroup pg;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &pg.world_rank), "MPI_Comm_rank (world)");
  mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &pg.world_size), "MPI_Comm_size (world)");
  LOPA_CHECK(pg.world_size % tp == 0, "--tp ", tp, " does not divide the world of ", pg.world_size,
             " ranks (world = tp × dp)");
  pg.tp_size = tp;
  pg.dp_size = pg.world_size / tp;
  pg.tp_rank = pg.world_rank % tp;
  pg.dp_rank = pg.world_rank / tp;
  pg.local_rank = local_rank_of_process();
  pg.device = device;
  pg.watchdog = CollectiveWatchdog::from_env(pg.world_rank);

  MPI_Comm world, tp_comm, dp_comm;
  mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &world), "MPI_Comm_dup (world group)");
  mpi_check(MPI_Comm_split(MPI_COMM_WORLD, pg.dp_rank, pg.world_rank, &tp_comm), "MPI_Comm_split (tp groups)");
  mpi_check(MPI_Comm_split(MPI_COMM_WORLD, pg.tp_rank, pg.world_rank, &dp_comm), "MPI_Comm_split (dp groups)");
  pg.world = group_communicator(world, "world", device, pg.watchdog);
  pg.tp = group_communicator(tp_comm, "tp", device, pg.watchdog);
  pg.dp = group_communicator(dp_comm, "dp", device, pg.watchdog);
  LOPA_CHECK(pg.tp->rank() == pg.tp_rank && pg.dp->rank() == pg.dp_rank, "process group: rank ", pg.world_rank,
             " got tp rank ", pg.tp->rank(), " and dp rank ", pg.dp->rank(), " from MPI_Comm_split (expected ",
             pg.tp_rank, ", ", pg.dp_rank, ")");
  return pg;
}

std::string ProcessGroup::describe() const {
  return str("world ", world_size, " = tp ", tp_size, " × dp ", dp_size, ", rank ", world_rank, " (tp ", tp_rank,
             ", dp ", dp_rank, ", local ", local_rank, "), device ", device.str(), ", backend ", world->backend());
}

uint64_t rank_seed(uint64_t base, int rank) {
  // splitmix64 of (base, rank): distinct, well-mixed streams for neighbouring ranks and seeds.
  uint64_t z = base + 0x9E3779B97F4A7C15ull * (static_cast<uint64_t>(rank) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void seed_everything(uint64_t seed) {
  torch::manual_seed(seed);  // CPU and every CUDA device's default generator
}

}  // namespace lopa
