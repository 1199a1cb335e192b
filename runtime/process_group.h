// ProcessGroup: this rank's place in the grid world = tp × dp, with one communicator per group.
// The only process-wide state of the project; a single process is tp = dp = 1 with self groups.
#pragma once

#include <c10/core/Device.h>

#include <memory>

#include "runtime/communicator.h"

namespace lopa {

struct ProcessGroup {
  int world_rank = 0, world_size = 1;
  int tp_rank = 0, tp_size = 1;  // ranks of one tensor-parallel group share one FM's shards
  int dp_rank = 0, dp_size = 1;  // ranks of one data-parallel group hold the same shard, other data
  int local_rank = 0;            // rank within this node (device placement)
  std::shared_ptr<Communicator> world, tp, dp;
  c10::Device device = c10::Device(c10::kCPU);

  bool is_root() const { return world_rank == 0; }

  // One process, no MPI: every group is the self group.
  static ProcessGroup single(c10::Device device = c10::Device(c10::kCPU));
};

}  // namespace lopa
