#include "runtime/distributed/mpi_runtime.h"

#include <mpi.h>

#include <exception>
#include <iostream>

#include "runtime/base/error.h"
#include "runtime/distributed/launch_env.h"

namespace lopa {

MpiRuntime::MpiRuntime(Mode mode, int* argc, char*** argv) {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  LOPA_CHECK(!finalized, "MpiRuntime: MPI was already finalised in this process");
  if (inited) return;  // someone else owns MPI (e.g. a test main): use it, leave it
  if (mode == Mode::IfLaunched && !detect_launch_env().launched()) return;
  int provided = 0;
  int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  LOPA_CHECK(rc == MPI_SUCCESS, "MPI_Init_thread failed with code ", rc);
  owns_ = true;
  // Errors come back as codes; runtime/mpi_communicator.cpp turns them into lopa::Error naming the call.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiRuntime::~MpiRuntime() {
  if (!owns_ || !initialized()) return;
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (std::uncaught_exceptions() > 0 && size > 1) {
    // Not MPI_Finalize (it would wait for ranks that wait for this one), and not MPI_Abort (the
    // exception's message, printed by whoever catches it, would be lost): the process exits non-zero
    // without finalising, and mpirun/srun end every other rank.
    std::cerr << str("rank ", rank, ": failed (the error follows); the launcher ends the job\n") << std::flush;
    return;
  }
  MPI_Finalize();
}

bool MpiRuntime::initialized() {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  return inited && !finalized;
}

}  // namespace lopa
