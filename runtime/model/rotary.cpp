#include "runtime/model/rotary.h"

#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

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

at::Tensor apply_rotary_interleaved(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  auto pairs = x.unflatten(-1, {x.size(-1) / 2, 2});
  auto x1 = pairs.select(-1, 0), x2 = pairs.select(-1, 1);
  return at::stack({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1).flatten(-2);
}

at::Tensor rope_inv_freq(const ModelConfig& c) {
  const int64_t dim = c.rotary_dim;
  auto exponent = at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(dim);
  // Scalar / tensor written as PyTorch evaluates it in Python (reciprocal, then multiply) for
  // bit-identical frequencies.
  auto inv_freq = at::pow(c.rope_theta, exponent).reciprocal();
  const auto& rs = c.rope_scaling;
  if (rs.type == "linear") {
    inv_freq = inv_freq / rs.factor;
  } else if (rs.type == "llama3") {
    const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_ctx / rs.low_freq_factor, high_wavelen = old_ctx / rs.high_freq_factor;
    auto wavelen = inv_freq.reciprocal() * (2 * M_PI);
    auto scaled = at::where(wavelen > low_wavelen, inv_freq / rs.factor, inv_freq);
    auto smooth = (wavelen.reciprocal() * old_ctx - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    auto medium = at::logical_and(at::logical_not(wavelen < high_wavelen), at::logical_not(wavelen > low_wavelen));
    inv_freq = at::where(medium, smoothed, scaled);
  }
  return inv_freq.contiguous();
}

at::Tensor rotate_heads(const at::Tensor& x, RotaryStyle style, int64_t rotary_dim, const at::Tensor& cos,
                        const at::Tensor& sin) {
  if (style == RotaryStyle::None) return x;
  const int64_t hd = x.size(-1);
  const bool partial = rotary_dim < hd;
  const at::Tensor rot = partial ? x.narrow(-1, 0, rotary_dim) : x;
  at::Tensor y = style == RotaryStyle::NeoX ? apply_rotary(rot, cos, sin) : apply_rotary_interleaved(rot, cos, sin);
  return partial ? at::cat({y, x.narrow(-1, rotary_dim, hd - rotary_dim)}, -1) : y;
}

}  // namespace lopa
