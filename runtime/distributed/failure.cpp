#include "runtime/distributed/failure.h"

#include <mpi.h>

#include <cstdlib>
#include <exception>
#include <iostream>

#include "runtime/base/error.h"
#include "runtime/distributed/mpi_runtime.h"
#include "runtime/distributed/process_group.h"

namespace lopa {

namespace {
// World rank and size, or (0, 1) without MPI.
std::pair<int, int> world_position() {
  if (!MpiRuntime::initialized()) return {0, 1};
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return {rank, size};
}
}  // namespace

void abort_job(const std::string& what) {
  const auto [rank, size] = world_position();
  std::cerr << "rank " << rank << ": " << what << std::endl;
  if (MpiRuntime::initialized() && size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  std::exit(1);
}

int run_rank(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    if (world_position().second > 1) abort_job(e.what());
    throw;
  }
}

uint64_t fingerprint(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

void check_same_config(const ProcessGroup& pg, const std::string& config) {
  if (pg.world_size == 1) return;
  at::Tensor mine = at::full({1}, static_cast<int64_t>(fingerprint(config)), at::kLong);
  const at::Tensor all = pg.world->all_gather(mine, 0);  // [world_size]
  const auto* h = all.data_ptr<int64_t>();
  std::string differ;
  int n = 0;
  for (int r = 1; r < pg.world_size; ++r) {
    if (h[r] == h[0]) continue;
    differ += (n++ ? ", " : "") + std::to_string(r);
  }
  LOPA_CHECK(n == 0, n == 1 ? "rank " : "ranks ", differ, " started with a configuration different from rank 0's ",
             "(fingerprints differ): every rank must get the same options");
}

}  // namespace lopa
