// The NCCL backend of Communicator: collectives over CUDA tensors, enqueued on LibTorch's current
// CUDA stream of the tensor's device (so they order with the kernels around them, and no host sync
// happens except in barrier()). CPU tensors go to an MPI communicator over the same ranks. Built
// only when LibTorch has CUDA and NCCL is found (LOPA_WITH_NCCL); see runtime/CMakeLists.txt.
#pragma once

#include <c10/core/Device.h>
#include <mpi.h>

#include <memory>
#include <string>

#include "runtime/distributed/communicator.h"

namespace lopa {

class CollectiveWatchdog;

// Collective over `comm`: rank 0 makes an ncclUniqueId, MPI broadcasts it, every rank joins one
// ncclComm on `device`. Takes ownership of `comm` (used for CPU tensors and the id broadcast).
std::shared_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, const std::string& name, c10::Device device,
                                                     std::shared_ptr<CollectiveWatchdog> watchdog = nullptr);

}  // namespace lopa
