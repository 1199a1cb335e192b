// Rotary position embedding (RoPE) in Hugging Face's rotate_half layout, as one autograd node:
//   y = x·cos + rotate_half(x)·sin,   rotate_half([x1, x2]) = [-x2, x1]   (halves of the head dim).
// The rotation is linear in x, so the backward is the transposed rotation of the gradient,
//   dx = g·cos + rotate_half_t(g·sin),   rotate_half_t([z1, z2]) = [z2, -z1],
// which needs only cos and sin: the composite of LibTorch ops would save x and its rotated copy for
// the two products, and its narrow()s would allocate zero-filled gradients in the backward.
#pragma once

#include <ATen/ATen.h>

namespace lopa {

// x: B × heads × T × head_dim; cos, sin: broadcastable to x (B × 1 × T × head_dim), never trained.
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace lopa
