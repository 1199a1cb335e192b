// Analytic FLOP and memory figures of one decoder training or generation step, for `lopa bench`
// (MFU and the RSS budget). The conventions are spelled out in flops_convention().
#pragma once

#include <cstdint>
#include <string>

#include "runtime/model/architecture.h"

namespace lopa {

// Parameters used by matmuls at every position: every projection of every layer.
int64_t layer_matmul_parameters(const Architecture& a);

// Model FLOPs per processed position of a training step over sequences of `seq_len` positions with
// `targets_per_row` label positions per row: mult·(N_layers + V·d·targets/seq_len) + 12·L·seq_len·H·hd,
// mult = 4 when FM weights are frozen (forward + input gradients), 6 for full fine-tuning.
double train_flops_per_token(const Architecture& a, int64_t seq_len, int64_t targets_per_row, bool weight_grads);
// Forward FLOPs per position at an attention context of `context` positions, with the LM head at every
// position (generation): 2·(N_layers + V·d) + 4·L·context·H·hd.
double forward_flops_per_token(const Architecture& a, double context);
// The convention of the two above, for the benchmark's JSON.
std::string flops_convention();

// Estimated bytes of the activations a training step keeps for backward on one rank (tp shards the
// heads and MLP columns), `elem` bytes per element (attention scores counted as fp32).
int64_t train_activation_bytes(const Architecture& a, int64_t batch, int64_t seq_len, int64_t tp, int64_t elem);

}  // namespace lopa
