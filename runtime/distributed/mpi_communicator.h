// The MPI backend of Communicator: collectives over CPU tensors on one MPI communicator. CUDA tensors
// are staged through host memory (correct, slow: the NCCL backend is the GPU path).
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "runtime/distributed/communicator.h"

namespace lopa {

class CollectiveWatchdog;

// Throws lopa::Error("<op> failed: <MPI error string>") unless rc == MPI_SUCCESS. Needs
// MPI_ERRORS_RETURN on the communicator (MpiRuntime and make_mpi_communicator set it).
void mpi_check(int rc, const std::string& op);

// Takes ownership of `comm` (MPI_Comm_free on destruction, unless MPI is finalised by then). `name`
// ("world", "tp", "dp") labels errors; the watchdog (may be null) guards every collective.
std::shared_ptr<Communicator> make_mpi_communicator(MPI_Comm comm, const std::string& name,
                                                    std::shared_ptr<CollectiveWatchdog> watchdog = nullptr);

}  // namespace lopa
