// LoPA (Jain et al., NeurIPS 2024): an instance-specific soft prompt Z = Z_S ∘ g(u vᵀ) built from a
// task-shared prompt Z_S (m×d) and a rank-r instance component u vᵀ predicted from an encoder
// embedding e (H) by two heads: row head  u = W2ᵘ tanh(W1ᵘ drop(e) + b1ᵘ) + b2ᵘ  (m×r),
//                                column head v = W2ᵛ tanh(W1ᵛ drop(e) + b1ᵛ) + b2ᵛ  (d×r).
// Trainable parameters: 2(H·h + h) + (h+1)·r·(m+d) + m·d (encoder excluded).
#pragma once

#include "lopa/method.h"

namespace lopa {

// How Z_S and the instance component I = u vᵀ (m×d) combine:
//   mul    Z = Z_S ∘ sigmoid(I)      (the paper's gate; default)
//   add    Z = Z_S + I
//   max    Z = max(Z_S, I)           (element-wise, no gate)
//   concat Z = [Z_S ; I]             (2m tokens)
enum class LopaCombine { Mul, Add, Max, Concat };
LopaCombine parse_lopa_combine(const std::string& s);  // throws on unknown names
std::string to_string(LopaCombine c);

struct LopaOptions {
  int64_t encoder_dim = 0;   // H
  int64_t head_dim = 0;      // h (0: = H)
  int64_t num_tokens = 0;    // m
  int64_t model_dim = 0;     // d
  int64_t rank = 1;          // r
  LopaCombine combine = LopaCombine::Mul;
  double dropout = 0.1;      // on the head inputs
  double init_std = 0.02;    // head weights N(0, init_std); dense biases U(±1/√H) as torch.nn.Linear; output biases zero
  double prompt_std = 1.0;   // Z_S ~ N(0, prompt_std) unless set by set_shared_prompt (PEFT's RANDOM init)
};

class LopaPrompt : public Method {
 public:
  explicit LopaPrompt(LopaOptions opt);

  std::string name() const override { return "lopa"; }
  NamedTensors parameters() override;
  int64_t num_trainable_parameters() const override;
  bool needs_encoder() const override { return true; }
  int64_t prompt_length() const override;
  at::Tensor soft_prompt(const at::Tensor& encoder_embedding, int64_t batch) override;
  void save(const std::string& dir) const override;
  void load(const std::string& dir) override;

  // The instance component u vᵀ before combination (B×m×d), exposed for tests and analysis.
  at::Tensor instance_component(const at::Tensor& encoder_embedding);
  // Replaces Z_S (m×d), e.g. with token embeddings of an init text.
  void set_shared_prompt(const at::Tensor& z_s);

  // The paper's count for given sizes.
  static int64_t formula(int64_t H, int64_t h, int64_t m, int64_t d, int64_t r);

  const LopaOptions& options() const { return opt_; }

  // Parameters (public for tests that set them by hand).
  at::Tensor z_s;                              // m×d
  at::Tensor row_w1, row_b1, row_w2, row_b2;   // h×H, h, (m·r)×h, m·r
  at::Tensor col_w1, col_b1, col_w2, col_b2;   // h×H, h, (d·r)×h, d·r

 private:
  LopaOptions opt_;
};

}  // namespace lopa
