// The trivial group of one: what a single process (tp = dp = 1) runs with.
#include "runtime/distributed/communicator.h"

#include "runtime/base/error.h"

namespace lopa {
namespace {

class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "self"; }
  void all_reduce(at::Tensor& t, ReduceOp op) override {
    // Same contract as the real backends: averaging integers is refused everywhere.
    LOPA_CHECK(op != ReduceOp::Avg || at::isFloatingType(t.scalar_type()), "all_reduce: avg of a ",
               std::string(c10::toString(t.scalar_type())), " tensor is undefined (use sum)");
  }
  at::Tensor all_gather(const at::Tensor& t, int64_t) override { return t; }
  at::Tensor reduce_scatter(const at::Tensor& t, int64_t, ReduceOp) override { return t; }
  void broadcast(at::Tensor&, int root) override {
    LOPA_CHECK(root == 0, "broadcast: root ", root, " is not a rank of a group of one");
  }
  void barrier() override {}
};

}  // namespace

const char* to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Max: return "max";
    case ReduceOp::Avg: return "avg";
  }
  return "?";
}

std::shared_ptr<Communicator> make_self_communicator() { return std::make_shared<SelfCommunicator>(); }

}  // namespace lopa
