#include "lopa/lopa_prompt.h"

#include <nlohmann/json.hpp>

#include "lopa/adapter_io.h"
#include "runtime/base/error.h"

namespace lopa {

LopaCombine parse_lopa_combine(const std::string& s) {
  if (s == "mul") return LopaCombine::Mul;
  if (s == "add") return LopaCombine::Add;
  if (s == "max") return LopaCombine::Max;
  if (s == "concat") return LopaCombine::Concat;
  fail("lopa-combine: unknown value '", s, "' (expected mul, add, max or concat)");
}

std::string to_string(LopaCombine c) {
  switch (c) {
    case LopaCombine::Mul: return "mul";
    case LopaCombine::Add: return "add";
    case LopaCombine::Max: return "max";
    case LopaCombine::Concat: return "concat";
  }
  return "?";
}

LopaPrompt::LopaPrompt(LopaOptions opt) : opt_(opt) {
  if (opt_.head_dim <= 0) opt_.head_dim = opt_.encoder_dim;
  LOPA_CHECK(opt_.encoder_dim > 0 && opt_.num_tokens > 0 && opt_.model_dim > 0 && opt_.rank > 0,
             "lopa: encoder dim, num-virtual-tokens, model dim and rank must be positive (got H=", opt_.encoder_dim,
             " m=", opt_.num_tokens, " d=", opt_.model_dim, " r=", opt_.rank, ")");
  const int64_t H = opt_.encoder_dim, h = opt_.head_dim, m = opt_.num_tokens, d = opt_.model_dim, r = opt_.rank;
  z_s = make_parameter({m, d}, opt_.prompt_std);
  row_w1 = make_parameter({h, H}, opt_.init_std);
  row_b1 = make_linear_bias(h, H);
  row_w2 = make_parameter({m * r, h}, opt_.init_std);
  row_b2 = make_parameter({m * r}, 0);
  col_w1 = make_parameter({h, H}, opt_.init_std);
  col_b1 = make_linear_bias(h, H);
  col_w2 = make_parameter({d * r, h}, opt_.init_std);
  col_b2 = make_parameter({d * r}, 0);
}

NamedTensors LopaPrompt::parameters() {
  return {{"z_s", z_s},           {"row_head.0.weight", row_w1}, {"row_head.0.bias", row_b1},
          {"row_head.2.weight", row_w2}, {"row_head.2.bias", row_b2}, {"col_head.0.weight", col_w1},
          {"col_head.0.bias", col_b1},   {"col_head.2.weight", col_w2}, {"col_head.2.bias", col_b2}};
}

int64_t LopaPrompt::num_trainable_parameters() const {
  return formula(opt_.encoder_dim, opt_.head_dim, opt_.num_tokens, opt_.model_dim, opt_.rank);
}

int64_t LopaPrompt::formula(int64_t H, int64_t h, int64_t m, int64_t d, int64_t r) {
  return 2 * (H * h + h) + (h + 1) * r * (m + d) + m * d;
}

int64_t LopaPrompt::prompt_length() const {
  return opt_.combine == LopaCombine::Concat ? 2 * opt_.num_tokens : opt_.num_tokens;
}

at::Tensor LopaPrompt::instance_component(const at::Tensor& e) {
  LOPA_CHECK(e.defined() && e.dim() == 2 && e.size(1) == opt_.encoder_dim, "lopa: encoder embedding must be B×",
             opt_.encoder_dim, ", got ", e.defined() ? shape_str(e.sizes()) : std::string("undefined"));
  const int64_t B = e.size(0), m = opt_.num_tokens, d = opt_.model_dim, r = opt_.rank;
  auto x = e.to(z_s.device(), at::kFloat);
  auto u = linear(at::tanh(linear(at::dropout(x, opt_.dropout, training_), row_w1, row_b1)), row_w2, row_b2)
               .view({B, m, r});
  auto v = linear(at::tanh(linear(at::dropout(x, opt_.dropout, training_), col_w1, col_b1)), col_w2, col_b2)
               .view({B, d, r});
  return at::bmm(u, v.transpose(1, 2));  // B×m×d
}

at::Tensor LopaPrompt::soft_prompt(const at::Tensor& e, int64_t batch) {
  auto inst = instance_component(e);
  LOPA_CHECK(inst.size(0) == batch, "lopa: encoder embedding has ", inst.size(0), " rows for a batch of ", batch);
  auto shared = z_s.unsqueeze(0).expand_as(inst);
  switch (opt_.combine) {
    case LopaCombine::Mul: return shared * at::sigmoid(inst);
    case LopaCombine::Add: return shared + inst;
    case LopaCombine::Max: return at::maximum(shared, inst);
    case LopaCombine::Concat: return at::cat({shared, inst}, 1);
  }
  return at::Tensor();
}

void LopaPrompt::set_shared_prompt(const at::Tensor& t) {
  LOPA_CHECK(t.sizes() == z_s.sizes(), "lopa: shared prompt must be ", shape_str(z_s.sizes()), ", got ", shape_str(t.sizes()));
  at::NoGradGuard g;
  z_s.copy_(t);
}

void LopaPrompt::save(const std::string& dir) const {
  nlohmann::json cfg = {{"method", "lopa"},
                        {"encoder_dim", opt_.encoder_dim},
                        {"head_dim", opt_.head_dim},
                        {"num_virtual_tokens", opt_.num_tokens},
                        {"token_dim", opt_.model_dim},
                        {"rank", opt_.rank},
                        {"combine", to_string(opt_.combine)},
                        {"dropout", opt_.dropout}};
  write_adapter(dir, const_cast<LopaPrompt*>(this)->parameters(), cfg, "lopa_config.json", "lopa_model.safetensors");
}

void LopaPrompt::load(const std::string& dir) {
  auto cfg = read_adapter_config(dir, "lopa_config.json");
  LOPA_CHECK(cfg.value("rank", int64_t(-1)) == opt_.rank && cfg.value("num_virtual_tokens", int64_t(-1)) == opt_.num_tokens &&
                 cfg.value("token_dim", int64_t(-1)) == opt_.model_dim && cfg.value("head_dim", int64_t(-1)) == opt_.head_dim &&
                 cfg.value("encoder_dim", int64_t(-1)) == opt_.encoder_dim,
             dir, "/lopa_config.json: sizes do not match this run's configuration");
  assign_parameters(parameters(), read_adapter_tensors(dir, "lopa_model.safetensors"), dir + "/lopa_model.safetensors");
}

}  // namespace lopa
