// Norm: the normalisation layers of the decoder families, with Hugging Face's numerics — RMSNorm
// (LlamaRMSNorm: statistics in float32, the normalised value cast back, then scaled) and LayerNorm
// (torch.nn.LayerNorm: weight and bias). Replicated on every tp rank.
#pragma once

#include <ATen/ATen.h>

namespace lopa {

enum class NormKind { RMS, Layer };

struct Norm {
  NormKind kind = NormKind::RMS;
  double eps = 1e-6;
  at::Tensor weight, bias;  // d; bias only for LayerNorm (may be undefined)

  at::Tensor forward(const at::Tensor& x) const;
};

}  // namespace lopa
