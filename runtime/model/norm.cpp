#include "runtime/model/norm.h"

namespace lopa {

at::Tensor Norm::forward(const at::Tensor& x) const {
  if (kind == NormKind::Layer) return at::layer_norm(x, {x.size(-1)}, weight, bias, eps);
  auto h = x.to(at::kFloat);
  auto var = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(var + eps);
  return weight * h.to(x.scalar_type());
}

}  // namespace lopa
