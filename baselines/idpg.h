// IDPG (Wu et al., 2022): an instance-dependent soft prompt generated from an encoder embedding e (H)
// by one bottleneck MLP, Z = reshape(W2 tanh(W1 drop(e) + b1) + b2) (m×d).
// Trainable parameters: H·h + h + (h+1)·m·d (the paper's GLUE runs use h = 256).
#pragma once

#include "lopa/method.h"

namespace lopa {

struct IdpgOptions {
  int64_t encoder_dim = 0;  // H
  int64_t head_dim = 256;   // h
  int64_t num_tokens = 0;   // m
  int64_t model_dim = 0;    // d
  double dropout = 0.1;
  double init_std = 0.02;   // weights N(0, init_std); dense bias U(±1/√H) as torch.nn.Linear; output bias zero
};

class Idpg : public Method {
 public:
  explicit Idpg(IdpgOptions opt);
  std::string name() const override { return "idpg"; }
  NamedTensors parameters() override;
  int64_t num_trainable_parameters() const override {
    return formula(opt_.encoder_dim, opt_.head_dim, opt_.num_tokens, opt_.model_dim);
  }
  bool needs_encoder() const override { return true; }
  int64_t prompt_length() const override { return opt_.num_tokens; }
  at::Tensor soft_prompt(const at::Tensor& encoder_embedding, int64_t batch) override;
  void save(const std::string& dir) const override;
  void load(const std::string& dir) override;

  static int64_t formula(int64_t H, int64_t h, int64_t m, int64_t d) { return H * h + h + (h + 1) * m * d; }

  at::Tensor w1, b1, w2, b2;  // h×H, h, (m·d)×h, m·d

 private:
  IdpgOptions opt_;
};

}  // namespace lopa
