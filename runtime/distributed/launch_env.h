// LaunchEnv: what the launcher (Open MPI's mpirun, SLURM's srun, MPICH/PMI) says about this process,
// read from its environment variables before MPI is initialised.
#pragma once

#include <string>

namespace lopa {

struct LaunchEnv {
  std::string launcher;  // "openmpi", "slurm", "pmi", or "" when started by hand
  int world_rank = 0, world_size = 1;
  int local_rank = -1;  // rank within this node; -1 when the launcher does not say
  bool launched() const { return !launcher.empty(); }
};

// Open MPI (OMPI_COMM_WORLD_*) wins over SLURM (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) over PMI
// (PMI_RANK, PMI_SIZE). A SLURM allocation without srun (SLURM_JOB_ID only) is not a launch.
LaunchEnv detect_launch_env();

}  // namespace lopa
