// ProcessGroup: this rank's place in the grid world = tp × dp, with one communicator per group.
// The only process-wide state of the project; a single process is tp = dp = 1 with self groups.
//
// Layout: tensor-parallel groups are consecutive world ranks ({0,1}, {2,3} for tp = 2 on 4 ranks), so
// tp_rank = world_rank % tp and dp_rank = world_rank / tp; dp groups stride by tp ({0,2}, {1,3}).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/distributed/communicator.h"

namespace lopa {

class CollectiveWatchdog;

struct ProcessGroup {
  int world_rank = 0, world_size = 1;
  int tp_rank = 0, tp_size = 1;  // ranks of one tensor-parallel group share one FM's shards
  int dp_rank = 0, dp_size = 1;  // ranks of one data-parallel group hold the same shard, other data
  int local_rank = 0;            // rank within this node (device placement)
  std::shared_ptr<Communicator> world, tp, dp;
  c10::Device device = c10::Device(c10::kCPU);
  std::shared_ptr<CollectiveWatchdog> watchdog;  // null unless LOPA_COLLECTIVE_TIMEOUT_S is set

  bool is_root() const { return world_rank == 0; }

  // One process, no MPI: every group is the self group.
  static ProcessGroup single(c10::Device device = c10::Device(c10::kCPU));

  // The grid over MPI_COMM_WORLD (collective: every rank calls it with the same tp). Without MPI
  // (MpiRuntime did not initialise it: the process was not launched by mpirun/srun) it is single()
  // and tp must be 1. Groups of one use the self communicator; larger ones use NCCL when `device`
  // is CUDA and NCCL was built, MPI otherwise.
  //   device: "auto" (cuda:<local_rank % #GPUs> if LibTorch sees a GPU, else cpu), "cpu", "cuda"
  //           (cuda:<local_rank % #GPUs>), or "cuda:N".
  static ProcessGroup init(int tp, const std::string& device = "auto");
  static ProcessGroup init(int tp, c10::Device device);

  // "world 4 = tp 2 × dp 2, rank 3 (tp 1, dp 1), device cpu, backend mpi".
  std::string describe() const;
};

// The device named by `spec` for a process with this node-local rank (see ProcessGroup::init).
c10::Device resolve_device(const std::string& spec, int local_rank);

// Rank within this node: OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID, else (under
// MPI) the rank in MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), else 0.
int local_rank_of_process();

// Deterministic per-rank seeds. Use the base seed itself for anything that must agree across ranks
// (trainable parameter init, data order); use rank_seed(base, pg.world_rank) for per-rank streams
// (dropout on sharded activations), or rank_seed(base, pg.tp_rank) for streams shared by a dp group.
uint64_t rank_seed(uint64_t base, int rank);
// Seeds LibTorch's CPU (and, when present, CUDA) generators with `seed`.
void seed_everything(uint64_t seed);

}  // namespace lopa
