// Dropout for the trainable heads and adapters (LoRA's dropout on a projection's input, LoPA / IDPG
// head inputs): the same distribution as at::dropout (each element kept with probability 1 - p and
// scaled by 1 / (1 - p)), with the mask drawn by a counter-based hash instead of at::bernoulli_, which
// on CPU costs more than the projection it feeds (4.9 ms vs 4.2 ms for GPT-2's c_attn on a 4×128×256
// input, one thread). Deterministic under the seed of LibTorch's default CPU generator (one 64-bit
// draw per call), so `seed` reproduces a run. CUDA tensors take at::dropout.
#pragma once

#include <ATen/ATen.h>

namespace lopa {

// x itself when !train or p == 0; zeros when p >= 1. Differentiable in x.
at::Tensor dropout(const at::Tensor& x, double p, bool train);

}  // namespace lopa
