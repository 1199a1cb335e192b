#include "baselines/idpg.h"

#include "lopa/adapter_io.h"
#include "runtime/base/error.h"

namespace lopa {

Idpg::Idpg(IdpgOptions opt) : opt_(opt) {
  LOPA_CHECK(opt_.encoder_dim > 0 && opt_.head_dim > 0 && opt_.num_tokens > 0 && opt_.model_dim > 0,
             "idpg: encoder dim, head dim, num-virtual-tokens and model dim must be positive");
  w1 = make_parameter({opt_.head_dim, opt_.encoder_dim}, opt_.init_std);
  b1 = make_linear_bias(opt_.head_dim, opt_.encoder_dim);
  w2 = make_parameter({opt_.num_tokens * opt_.model_dim, opt_.head_dim}, opt_.init_std);
  b2 = make_parameter({opt_.num_tokens * opt_.model_dim}, 0);
}

NamedTensors Idpg::parameters() {
  return {{"head.0.weight", w1}, {"head.0.bias", b1}, {"head.2.weight", w2}, {"head.2.bias", b2}};
}

at::Tensor Idpg::soft_prompt(const at::Tensor& e, int64_t batch) {
  LOPA_CHECK(e.defined() && e.dim() == 2 && e.size(1) == opt_.encoder_dim && e.size(0) == batch,
             "idpg: encoder embedding must be ", batch, "×", opt_.encoder_dim);
  auto x = at::dropout(e.to(w1.device(), at::kFloat), opt_.dropout, training_);
  return linear(at::tanh(linear(x, w1, b1)), w2, b2).view({batch, opt_.num_tokens, opt_.model_dim});
}

void Idpg::save(const std::string& dir) const {
  nlohmann::json cfg = {{"method", "idpg"},         {"encoder_dim", opt_.encoder_dim}, {"head_dim", opt_.head_dim},
                        {"num_virtual_tokens", opt_.num_tokens}, {"token_dim", opt_.model_dim},
                        {"dropout", opt_.dropout}};
  write_adapter(dir, const_cast<Idpg*>(this)->parameters(), cfg, "idpg_config.json", "idpg_model.safetensors");
}

void Idpg::load(const std::string& dir) {
  auto cfg = read_adapter_config(dir, "idpg_config.json");
  LOPA_CHECK(cfg.value("head_dim", int64_t(-1)) == opt_.head_dim &&
                 cfg.value("num_virtual_tokens", int64_t(-1)) == opt_.num_tokens &&
                 cfg.value("token_dim", int64_t(-1)) == opt_.model_dim,
             dir, "/idpg_config.json: sizes do not match this run's configuration");
  assign_parameters(parameters(), read_adapter_tensors(dir, "idpg_model.safetensors"), dir + "/idpg_model.safetensors");
}

}  // namespace lopa
