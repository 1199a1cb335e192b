// Communicator: collectives over at::Tensor within one group of ranks. Two real backends: MPI for
// CPU tensors (runtime/mpi_communicator.*) and NCCL for CUDA tensors (runtime/nccl_communicator.*);
// a group of one is the same interface with nothing to exchange (make_self_communicator).
//
// Every rank of the group must call the same collectives in the same order with tensors of the same
// dtype and shape. Inputs may be non-contiguous. Dtypes: f32, f64, f16, bf16, i64, i32, i16, i8, u8,
// bool. Reductions of f16/bf16 accumulate in f32 and round once (MPI has no 16-bit float ops; NCCL
// reduces them natively). Avg is defined for floating dtypes only; on bool, Sum and Max are logical or.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

namespace lopa {

enum class ReduceOp { Sum, Max, Avg };

const char* to_string(ReduceOp op);

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "self", "mpi", "nccl"

  // In place: every rank ends with the reduction of all ranks' `t`.
  virtual void all_reduce(at::Tensor& t, ReduceOp op = ReduceOp::Sum) = 0;
  // Concatenation of every rank's `t` along `dim`, in rank order.
  virtual at::Tensor all_gather(const at::Tensor& t, int64_t dim) = 0;
  // Reduces `t` over ranks and returns this rank's equal slice of the result along `dim`.
  virtual at::Tensor reduce_scatter(const at::Tensor& t, int64_t dim, ReduceOp op = ReduceOp::Sum) = 0;
  // In place: every rank ends with `root`'s `t`.
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
};

// A group of one rank: every collective is the identity.
std::shared_ptr<Communicator> make_self_communicator();

}  // namespace lopa
