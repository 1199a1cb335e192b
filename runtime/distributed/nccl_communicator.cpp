// NCCL collectives over CUDA at::Tensors. NCCL reduces f16/bf16 natively (no f32 upcast, unlike the
// MPI backend); int16 has no NCCL type and is refused.
#include "runtime/distributed/nccl_communicator.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "runtime/distributed/collective_layout.h"
#include "runtime/distributed/collective_watchdog.h"
#include "runtime/base/error.h"
#include "runtime/distributed/mpi_communicator.h"

namespace lopa {
namespace {

void nccl_check(ncclResult_t rc, const std::string& op) {
  if (rc == ncclSuccess) return;
  fail(op, " failed: ", ncclGetErrorString(rc), " (", ncclGetLastError(nullptr), ")");
}

void cuda_check(cudaError_t rc, const std::string& op) {
  if (rc == cudaSuccess) return;
  fail(op, " failed: ", cudaGetErrorString(rc));
}

ncclDataType_t nccl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
    case at::kChar: return ncclInt8;
    case at::kByte:
    case at::kBool: return ncclUint8;
    default: fail("NCCL communicator: dtype ", layout::dtype_name(t), " is not supported");
  }
}

ncclRedOp_t nccl_op(ReduceOp op, at::ScalarType t) {
  if (t == at::kBool) return ncclMax;  // logical or of 0/1 bytes
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Avg: return ncclAvg;
  }
  return ncclSum;
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(MPI_Comm comm, std::string name, c10::Device device, std::shared_ptr<CollectiveWatchdog> watchdog)
      : name_(std::move(name)), device_(device), watchdog_(watchdog) {
    LOPA_CHECK(device_.is_cuda() && device_.has_index(), "NCCL communicator (", name_, " group): device ",
               device_.str(), " is not an indexed CUDA device");
    mpi_check(MPI_Comm_rank(comm, &rank_), "MPI_Comm_rank (" + name_ + " group)");
    mpi_check(MPI_Comm_size(comm, &size_), "MPI_Comm_size (" + name_ + " group)");
    ncclUniqueId id;
    if (rank_ == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId (" + name_ + " group)");
    mpi_check(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm), "MPI_Bcast of the ncclUniqueId (" + name_ + " group)");
    host_ = make_mpi_communicator(comm, name_, watchdog);  // owns comm from here on
    c10::cuda::CUDAGuard guard(device_);
    nccl_check(ncclCommInitRank(&comm_, size_, id, rank_), str("ncclCommInitRank (", name_, " group, rank ", rank_,
                                                                " of ", size_, " on ", device_.str(), ")"));
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  void all_reduce(at::Tensor& t, ReduceOp op) override {
    if (!t.is_cuda()) return host_->all_reduce(t, op);
    check(t, "all_reduce");
    LOPA_CHECK(op != ReduceOp::Avg || at::isFloatingType(t.scalar_type()), "all_reduce: avg of a ",
               layout::dtype_name(t.scalar_type()),
               " tensor is undefined (use sum)");
    CollectiveWatchdog::Scope watch(watchdog_.get(), "all_reduce", name_);
    c10::cuda::CUDAGuard guard(t.device());
    at::Tensor work = t.contiguous();
    nccl_check(ncclAllReduce(work.data_ptr(), work.data_ptr(), work.numel(), nccl_type(work.scalar_type()),
                             nccl_op(op, work.scalar_type()), comm_, stream(t)),
               what("ncclAllReduce", work));
    if (!work.is_same(t)) t.copy_(work);
  }

  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override {
    if (!t.is_cuda()) return host_->all_gather(t, dim);
    check(t, "all_gather");
    const int64_t d = layout::wrap_dim(t, dim, "all_gather");
    CollectiveWatchdog::Scope watch(watchdog_.get(), "all_gather", name_);
    c10::cuda::CUDAGuard guard(t.device());
    const at::Tensor in = t.contiguous();
    std::vector<int64_t> shape{size_};
    shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
    at::Tensor blocks = at::empty(shape, t.options());
    nccl_check(ncclAllGather(in.data_ptr(), blocks.data_ptr(), in.numel(), nccl_type(in.scalar_type()), comm_,
                             stream(t)),
               what("ncclAllGather", in));
    return layout::blocks_to_concat(blocks, d);
  }

  at::Tensor reduce_scatter(const at::Tensor& t, int64_t dim, ReduceOp op) override {
    if (!t.is_cuda()) return host_->reduce_scatter(t, dim, op);
    check(t, "reduce_scatter");
    LOPA_CHECK(op != ReduceOp::Avg || at::isFloatingType(t.scalar_type()), "reduce_scatter: avg of a ",
               layout::dtype_name(t.scalar_type()), " tensor is undefined (use sum)");
    const int64_t d = layout::wrap_dim(t, dim, "reduce_scatter");
    CollectiveWatchdog::Scope watch(watchdog_.get(), "reduce_scatter", name_);
    c10::cuda::CUDAGuard guard(t.device());
    const at::Tensor blocks = layout::concat_to_blocks(t, d, size_, "reduce_scatter");  // [n, .., s/n, ..]
    at::Tensor out = at::empty(blocks.sizes().slice(1), blocks.options());
    nccl_check(ncclReduceScatter(blocks.data_ptr(), out.data_ptr(), out.numel(), nccl_type(out.scalar_type()),
                                 nccl_op(op, out.scalar_type()), comm_, stream(t)),
               what("ncclReduceScatter", blocks));
    return out;
  }

  void broadcast(at::Tensor& t, int root) override {
    LOPA_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of the ", name_, " group of ",
               size_);
    if (!t.is_cuda()) return host_->broadcast(t, root);
    check(t, "broadcast");
    CollectiveWatchdog::Scope watch(watchdog_.get(), "broadcast", name_);
    c10::cuda::CUDAGuard guard(t.device());
    at::Tensor work = t.contiguous();
    nccl_check(ncclBroadcast(work.data_ptr(), work.data_ptr(), work.nbytes(), ncclUint8, root, comm_, stream(t)),
               what("ncclBroadcast", work));
    if (!work.is_same(t)) t.copy_(work);
  }

  // Waits for every rank's queued work: an all-reduce of one element, then a sync of that stream.
  void barrier() override {
    CollectiveWatchdog::Scope watch(watchdog_.get(), "barrier", name_);
    c10::cuda::CUDAGuard guard(device_);
    at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(device_));
    const cudaStream_t s = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
    nccl_check(ncclAllReduce(one.data_ptr(), one.data_ptr(), 1, ncclFloat32, ncclSum, comm_, s),
               "ncclAllReduce (barrier on the " + name_ + " group)");
    cuda_check(cudaStreamSynchronize(s), "cudaStreamSynchronize (barrier on the " + name_ + " group)");
  }

 private:
  void check(const at::Tensor& t, const char* op) const {
    LOPA_CHECK(t.device() == device_, op, " on the ", name_, " group: tensor on ", t.device().str(),
               " but the NCCL communicator is on ", device_.str());
  }
  static cudaStream_t stream(const at::Tensor& t) {
    return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
  }
  std::string what(const char* call, const at::Tensor& t) const {
    return str(call, " of ", layout::describe(t), " on the ", name_, " group (rank ", rank_, " of ", size_, ")");
  }

  std::string name_;
  c10::Device device_;
  std::shared_ptr<CollectiveWatchdog> watchdog_;
  std::shared_ptr<Communicator> host_;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, const std::string& name, c10::Device device,
                                                     std::shared_ptr<CollectiveWatchdog> watchdog) {
  return std::make_shared<NcclCommunicator>(comm, name, device, std::move(watchdog));
}

}  // namespace lopa
