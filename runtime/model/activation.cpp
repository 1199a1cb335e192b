#include "runtime/model/activation.h"

#include "runtime/base/error.h"

namespace lopa {

Activation parse_activation(const std::string& name, const std::string& source) {
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::GeluTanh;
  if (name == "gelu") return Activation::GeluErf;
  if (name == "relu") return Activation::Relu;
  fail(source, ": activation '", name, "' is not supported (silu, gelu_new, gelu_pytorch_tanh, gelu, relu)");
}

at::Tensor activate(Activation a, const at::Tensor& x) {
  switch (a) {
    case Activation::Silu: return at::silu(x);
    case Activation::GeluTanh: return at::gelu(x, "tanh");  // gelu_new: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
    case Activation::GeluErf: return at::gelu(x);
    case Activation::Relu: return at::relu(x);
  }
  return x;
}

}  // namespace lopa
