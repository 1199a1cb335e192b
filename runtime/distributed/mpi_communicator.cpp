// MPI collectives over at::Tensor. Counts are MPI ints: all_reduce and broadcast go in chunks of at
// most 2^30 elements; all_gather and reduce_scatter refuse blocks larger than that.
#include "runtime/distributed/mpi_communicator.h"

#include <algorithm>

#include "runtime/distributed/collective_layout.h"
#include "runtime/distributed/collective_watchdog.h"
#include "runtime/base/error.h"

namespace lopa {

void mpi_check(int rc, const std::string& op) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail(op, " failed: ", std::string(msg, len));
}

namespace {

constexpr int64_t kMaxCount = int64_t(1) << 30;

bool is_16bit_float(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

// The MPI type that moves `t`'s elements. f16/bf16 move as 16-bit words and are reduced in f32.
MPI_Datatype mpi_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kHalf:
    case at::kBFloat16: return MPI_UINT16_T;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kShort: return MPI_INT16_T;
    case at::kChar: return MPI_INT8_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kBool: return MPI_C_BOOL;
    default: fail("MPI communicator: dtype ", layout::dtype_name(t), " is not supported");
  }
}

MPI_Op mpi_op(ReduceOp op, at::ScalarType t) {
  if (t == at::kBool) return MPI_LOR;  // sum and max of booleans: logical or
  return op == ReduceOp::Max ? MPI_MAX : MPI_SUM;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::string name, std::shared_ptr<CollectiveWatchdog> watchdog)
      : comm_(comm), name_(std::move(name)), watchdog_(std::move(watchdog)) {
    mpi_check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler (" + name_ + " group)");
    mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank (" + name_ + " group)");
    mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size (" + name_ + " group)");
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce(at::Tensor& t, ReduceOp op) override {
    if (t.is_cuda()) return staged(t, [&](at::Tensor& h) { all_reduce(h, op); });
    check_reduce(t, op, "all_reduce");
    CollectiveWatchdog::Scope watch(watchdog_.get(), "all_reduce", name_);
    // Work on a contiguous buffer (in f32 for 16-bit floats), then write back if it is a copy.
    at::Tensor work = is_16bit_float(t.scalar_type()) ? t.to(at::kFloat) : t.contiguous();
    const MPI_Datatype type = mpi_type(work.scalar_type());
    const MPI_Op mop = mpi_op(op, work.scalar_type());
    char* p = static_cast<char*>(work.data_ptr());
    for (int64_t off = 0, n = work.numel(); off < n; off += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - off));
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, p + off * work.element_size(), count, type, mop, comm_),
                what("MPI_Allreduce", work));
    }
    if (op == ReduceOp::Avg) work.div_(size_);
    if (!work.is_same(t)) t.copy_(work);
  }

  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override {
    if (t.is_cuda()) return all_gather(t.cpu(), dim).to(t.device());
    const int64_t d = layout::wrap_dim(t, dim, "all_gather");
    CollectiveWatchdog::Scope watch(watchdog_.get(), "all_gather", name_);
    const at::Tensor in = t.contiguous();
    std::vector<int64_t> shape{size_};
    shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
    at::Tensor blocks = at::empty(shape, t.options());
    const MPI_Datatype type = mpi_type(t.scalar_type());
    mpi_check(MPI_Allgather(in.data_ptr(), count_of(in, "all_gather"), type, blocks.data_ptr(),
                            count_of(in, "all_gather"), type, comm_),
              what("MPI_Allgather", in));
    return layout::blocks_to_concat(blocks, d);
  }

  at::Tensor reduce_scatter(const at::Tensor& t, int64_t dim, ReduceOp op) override {
    if (t.is_cuda()) return reduce_scatter(t.cpu(), dim, op).to(t.device());
    check_reduce(t, op, "reduce_scatter");
    const int64_t d = layout::wrap_dim(t, dim, "reduce_scatter");
    CollectiveWatchdog::Scope watch(watchdog_.get(), "reduce_scatter", name_);
    at::Tensor blocks = layout::concat_to_blocks(t, d, size_, "reduce_scatter");  // [n, .., s/n, ..]
    if (is_16bit_float(t.scalar_type())) blocks = blocks.to(at::kFloat);
    at::Tensor out = at::empty(blocks.sizes().slice(1), blocks.options());
    const MPI_Datatype type = mpi_type(blocks.scalar_type());
    mpi_check(MPI_Reduce_scatter_block(blocks.data_ptr(), out.data_ptr(), count_of(out, "reduce_scatter"), type,
                                       mpi_op(op, blocks.scalar_type()), comm_),
              what("MPI_Reduce_scatter_block", blocks));
    if (op == ReduceOp::Avg) out.div_(size_);
    return out.to(t.scalar_type());
  }

  void broadcast(at::Tensor& t, int root) override {
    LOPA_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of the ", name_, " group of ",
               size_);
    if (t.is_cuda()) return staged(t, [&](at::Tensor& h) { broadcast(h, root); });
    CollectiveWatchdog::Scope watch(watchdog_.get(), "broadcast", name_);
    at::Tensor work = t.contiguous();
    char* p = static_cast<char*>(work.data_ptr());
    for (int64_t off = 0, n = work.nbytes(); off < n; off += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - off));
      mpi_check(MPI_Bcast(p + off, count, MPI_BYTE, root, comm_), what("MPI_Bcast", work));
    }
    if (!work.is_same(t)) t.copy_(work);
  }

  void barrier() override {
    CollectiveWatchdog::Scope watch(watchdog_.get(), "barrier", name_);
    mpi_check(MPI_Barrier(comm_), "MPI_Barrier on the " + name_ + " group");
  }

 private:
  template <typename F>
  void staged(at::Tensor& t, F&& f) {
    at::Tensor h = t.cpu();
    f(h);
    t.copy_(h);
  }

  void check_reduce(const at::Tensor& t, ReduceOp op, const char* name) const {
    LOPA_CHECK(op != ReduceOp::Avg || at::isFloatingType(t.scalar_type()), name, ": avg of a ", layout::dtype_name(t.scalar_type()),
               " tensor is undefined (use sum)");
  }

  int count_of(const at::Tensor& t, const char* name) const {
    LOPA_CHECK(t.numel() <= kMaxCount, name, ": a block of ", t.numel(), " elements exceeds the MPI count limit");
    return static_cast<int>(t.numel());
  }

  // "MPI_Allreduce of Float[4, 8] on the tp group (rank 1 of 2)": what a failure message names.
  std::string what(const char* call, const at::Tensor& t) const {
    return str(call, " of ", layout::describe(t), " on the ", name_, " group (rank ", rank_, " of ", size_, ")");
  }

  MPI_Comm comm_;
  std::string name_;
  std::shared_ptr<CollectiveWatchdog> watchdog_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::shared_ptr<Communicator> make_mpi_communicator(MPI_Comm comm, const std::string& name,
                                                    std::shared_ptr<CollectiveWatchdog> watchdog) {
  return std::make_shared<MpiCommunicator>(comm, name, std::move(watchdog));
}

}  // namespace lopa
