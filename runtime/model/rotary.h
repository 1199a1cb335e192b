// Rotary position embedding (RoPE) in Hugging Face's rotate_half layout, as one autograd node:
//   y = x·cos + rotate_half(x)·sin,   rotate_half([x1, x2]) = [-x2, x1]   (halves of the head dim).
// The rotation is linear in x, so the backward is the transposed rotation of the gradient,
//   dx = g·cos + rotate_half_t(g·sin),   rotate_half_t([z1, z2]) = [z2, -z1],
// which needs only cos and sin: the composite of LibTorch ops would save x and its rotated copy for
// the two products, and its narrow()s would allocate zero-filled gradients in the backward.
#pragma once

#include <ATen/ATen.h>

#include "runtime/model/model_config.h"

namespace lopa {

// x: B × heads × T × head_dim; cos, sin: broadcastable to x (B × 1 × T × head_dim), never trained.
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// GPT-J / CodeGen layout: pairs (2i, 2i+1) rotate by angle i (rotate_every_two with duplicate-
// interleaved tables), y[2i] = x[2i]·cos_i − x[2i+1]·sin_i, y[2i+1] = x[2i+1]·cos_i + x[2i]·sin_i.
// x: … × rotary_dim; cos, sin: … × rotary_dim/2 (one angle per pair), broadcastable.
at::Tensor apply_rotary_interleaved(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// HF inverse frequencies (float32) over c.rotary_dim dims with c.rope_theta and linear / llama3
// scaling, computed as transformers computes them (bit-identical).
at::Tensor rope_inv_freq(const ModelConfig& c);

// Rotates the first rotary_dim dims of each head in `style` and passes the rest through.
// x: B × heads × T × head_dim. cos/sin: B × 1 × T × rotary_dim (NeoX: the angles twice, as HF's
// cat(freqs, freqs)) or B × 1 × T × rotary_dim/2 (GPT-J: one angle per pair).
at::Tensor rotate_heads(const at::Tensor& x, RotaryStyle style, int64_t rotary_dim, const at::Tensor& cos,
                        const at::Tensor& sin);

}  // namespace lopa
