// The trivial group of one: what a single process (tp = dp = 1) runs with.
#include "runtime/communicator.h"

namespace lopa {
namespace {

class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "self"; }
  void all_reduce(at::Tensor&, ReduceOp) override {}
  at::Tensor all_gather(const at::Tensor& t, int64_t) override { return t; }
  at::Tensor reduce_scatter(const at::Tensor& t, int64_t, ReduceOp) override { return t; }
  void broadcast(at::Tensor&, int) override {}
  void barrier() override {}
};

}  // namespace

std::shared_ptr<Communicator> make_self_communicator() { return std::make_shared<SelfCommunicator>(); }

}  // namespace lopa
