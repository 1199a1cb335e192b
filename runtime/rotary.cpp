#include "runtime/rotary.h"

#include <torch/csrc/autograd/custom_function.h>

namespace lopa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

at::Tensor rotate_half_t(const at::Tensor& z) {
  const int64_t h = z.size(-1) / 2;
  return at::cat({z.narrow(-1, h, h), -z.narrow(-1, 0, h)}, -1);
}

struct Rotary : torch::autograd::Function<Rotary> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return at::addcmul(x * cos, rotate_half(x), sin);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& g = grads[0];
    return {at::add(g * saved[0], rotate_half_t(g * saved[1])), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return Rotary::apply(x, cos, sin);
}

}  // namespace lopa
