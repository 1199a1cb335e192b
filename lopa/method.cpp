#include "lopa/method.h"

#include <cmath>
#include <map>

#include "runtime/base/error.h"

namespace lopa {

void Method::to(c10::Device device) {
  for (auto& [name, p] : parameters()) {
    if (p.device() == device) continue;
    at::NoGradGuard no_grad;
    auto moved = p.to(device);
    p.set_data(moved);
  }
}

at::Tensor make_parameter(at::IntArrayRef sizes, double std) {
  auto t = at::zeros(sizes, at::TensorOptions().dtype(at::kFloat));
  if (std > 0) t.normal_(0.0, std);
  t.set_requires_grad(true);
  return t;
}

at::Tensor make_linear_bias(int64_t out, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  auto t = at::empty({out}, at::TensorOptions().dtype(at::kFloat)).uniform_(-bound, bound);
  t.set_requires_grad(true);
  return t;
}

std::string shape_str(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

int64_t count_elements(const NamedTensors& params) {
  int64_t n = 0;
  for (const auto& [name, p] : params) n += p.numel();
  return n;
}

void assign_parameters(const NamedTensors& params, const NamedTensors& loaded, const std::string& what) {
  std::map<std::string, at::Tensor> by_name(loaded.begin(), loaded.end());
  at::NoGradGuard no_grad;
  for (const auto& [name, p] : params) {
    auto it = by_name.find(name);
    LOPA_CHECK(it != by_name.end(), what, ": missing tensor '", name, "'");
    LOPA_CHECK(it->second.sizes() == p.sizes(), what, ": tensor '", name, "' has shape ", shape_str(it->second.sizes()),
               ", expected ", shape_str(p.sizes()));
    p.copy_(it->second.to(p.device(), p.scalar_type()));
  }
}

}  // namespace lopa
