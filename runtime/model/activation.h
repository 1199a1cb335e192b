// The MLP activations of the supported families, by their config.json names (transformers' ACT2FN).
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace lopa {

enum class Activation { Silu, GeluTanh, GeluErf, Relu };

// "silu"/"swish", "gelu_new"/"gelu_pytorch_tanh"/"gelu_fast" (tanh approximation), "gelu" (erf), "relu";
// throws naming `source` and the supported names for anything else.
Activation parse_activation(const std::string& name, const std::string& source);
at::Tensor activate(Activation a, const at::Tensor& x);

}  // namespace lopa
