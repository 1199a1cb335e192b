#include "runtime/model/projection.h"

#include "runtime/base/error.h"
#include "runtime/base/linear.h"
#include "runtime/distributed/tensor_parallel.h"

namespace lopa {

namespace {
const char* const kRoleNames[kNumRoles] = {"q", "k", "v", "o", "gate", "up", "down", "fc_in", "fc_out"};
}

const char* role_name(Role r) { return kRoleNames[static_cast<int>(r)]; }

std::optional<Role> parse_role(const std::string& s) {
  std::string t = s;
  if (t.size() > 5 && t.compare(t.size() - 5, 5, "_proj") == 0) t.resize(t.size() - 5);
  for (int i = 0; i < kNumRoles; ++i)
    if (t == kRoleNames[i]) return static_cast<Role>(i);
  return std::nullopt;
}

at::Tensor Projection::forward(const at::Tensor& x, Communicator& tp) const {
  if (!adapter) {
    if (!row_parallel) return tp::column_parallel_linear(x, weight, bias, tp, /*gather_output=*/false);
    return tp::row_parallel_linear(x, weight, bias, tp);
  }
  if (!row_parallel) {
    // The delta gets the raw input, not xr: its own input gradient is already whole on every rank (a
    // column-parallel adapter all-reduces inside, see Lora), so passing it through copy_to_region again
    // would add it tp times.
    auto xr = tp::copy_to_region(x, tp);
    auto y = lopa::linear(xr, weight, bias);
    return y + adapter->delta(x);
  }
  auto y = lopa::linear(x, weight) + adapter->delta(x);
  y = tp::reduce_from_region(y, tp);
  return bias.defined() ? y + bias : y;
}

}  // namespace lopa
