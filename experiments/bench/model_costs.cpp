#include "experiments/bench/model_costs.h"

#include <algorithm>

namespace lopa {

int64_t layer_matmul_parameters(const Architecture& a) {
  int64_t n = 0;
  for (const auto& L : a.spec().layers)
    for (const auto& p : L.projections) n += p.in * p.out;
  return n;
}

double train_flops_per_token(const Architecture& a, int64_t seq_len, int64_t targets, bool weight_grads) {
  const auto& c = a.config();
  const double mult = weight_grads ? 6.0 : 4.0;
  const double head = static_cast<double>(c.vocab_size) * c.hidden_size * targets / static_cast<double>(seq_len);
  const double attn = 12.0 * c.num_hidden_layers * seq_len * c.num_attention_heads * c.head_dim;
  return mult * (static_cast<double>(layer_matmul_parameters(a)) + head) + attn;
}

double forward_flops_per_token(const Architecture& a, double context) {
  const auto& c = a.config();
  return 2.0 * (static_cast<double>(layer_matmul_parameters(a)) + static_cast<double>(c.vocab_size) * c.hidden_size) +
         4.0 * c.num_hidden_layers * context * c.num_attention_heads * c.head_dim;
}

std::string flops_convention() {
  return "train: 4N (frozen FM: forward + input gradients, no weight gradients) or 6N (fft) per position, "
         "N = layer matmul parameters + LM head counted only at label positions (V*d*targets/seq_len), "
         "embedding lookup 0, plus attention 12*L*seq_len*H*hd (QK^T and PV over the full seq_len, forward "
         "+ backward); method parameters (soft prompt, LoPA heads, LoRA) not counted. generate: 2N + 2Vd "
         "+ 4*L*context*H*hd per position. tokens = batch*seq_len positions the FM processes (soft prompt "
         "included). peak: best LibTorch square matmul at the run's dtype, summed over ranks, measured in the same run";
}

int64_t train_activation_bytes(const Architecture& a, int64_t B, int64_t T, int64_t tp, int64_t elem) {
  const auto& c = a.config();
  // A gated MLP (gate, up) keeps gate, up, act(gate) and their product; a plain one fc_in and act(fc_in).
  int64_t mlp_inputs = 0;
  for (const auto& p : a.spec().layers.at(0).projections) mlp_inputs += p.role == Role::Gate || p.role == Role::Up || p.role == Role::FcIn;
  const int64_t mlp_kept = mlp_inputs == 2 ? 4 : 2;
  const int64_t d = c.hidden_size, q = c.num_attention_heads * c.head_dim / tp,
                kv = std::max<int64_t>(1, c.num_key_value_heads / tp) * c.head_dim, F = c.intermediate_size / tp,
                H = c.num_attention_heads / tp;
  // Kept per position and layer: residual, two norms' input·rsqrt and output, roped q/k, v, the
  // regrouped q and the attention output, gate/up, silu(gate), their product; scores and softmax.
  const int64_t per_pos = (5 * d + 3 * q + 2 * kv + mlp_kept * F) * elem + 2 * H * T * 4;
  return B * T * (c.num_hidden_layers * per_pos + 2 * d * elem);
}

}  // namespace lopa
