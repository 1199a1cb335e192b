#include "runtime/distributed/launch_env.h"

#include <cstdlib>

#include "runtime/base/error.h"

namespace lopa {
namespace {

// -1 when unset; a malformed value is an error naming the variable.
int env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  LOPA_CHECK(*end == '\0' && x >= 0, "environment variable ", name, "='", v, "' is not a non-negative integer");
  return static_cast<int>(x);
}

}  // namespace

LaunchEnv detect_launch_env() {
  LaunchEnv env;
  struct Scheme {
    const char *name, *rank, *size, *local;
  };
  static const Scheme schemes[] = {
      {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
      {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
      {"pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
  };
  for (const auto& s : schemes) {
    const int rank = env_int(s.rank), size = env_int(s.size);
    // SLURM sets SLURM_PROCID only inside srun steps; a batch script's own shell has neither.
    if (rank < 0 || size < 1) continue;
    env.launcher = s.name;
    env.world_rank = rank;
    env.world_size = size;
    env.local_rank = env_int(s.local);
    break;
  }
  return env;
}

}  // namespace lopa
