// GPT-2's block, reused by the families built on it (CodeSage is GPT-2 with bidirectional attention), as
// transformers' modular files reuse another model's layers.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "runtime/model/activation.h"
#include "runtime/model/architecture.h"

namespace lopa {

// Layer `prefix` ("transformer.h.3."): ln_1, ln_2; Conv1D (stored [in, out]) attn.c_attn holding q | k | v,
// attn.c_proj, mlp.c_fc (d → F), mlp.c_proj, all with biases.
LayerSpec gpt2_layer(const std::string& prefix, int64_t d, int64_t F);

// x += c_proj(attn(ln_1(x))); x += mlp.c_proj(act(c_fc(ln_2(x)))).
at::Tensor gpt2_block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp, Activation act);

}  // namespace lopa
