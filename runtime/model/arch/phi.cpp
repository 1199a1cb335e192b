// PhiForCausalLM (transformers' modeling_phi.py; microsoft/phi-1, phi-1_5, phi-2): one
// input_layernorm per block and a parallel residual x + dense(attn(ln(x))) + fc2(act(fc1(ln(x)))),
// NeoX rotary on the first partial_rotary_factor · head_dim dims, q·kᵀ in float32, final_layernorm,
// and an LM head with bias. The pre-2024 remote-code layout is refused by the registry.
#include "runtime/base/error.h"
#include "runtime/model/activation.h"
#include "runtime/model/architecture.h"
#include "runtime/model/attention.h"

namespace lopa {
namespace {

class Phi : public Architecture {
 public:
  explicit Phi(const ConfigReader& r) {
    auto& c = cfg_;
    const auto& src = r.source();
    c.architecture = "PhiForCausalLM";
    c.model_type = "phi";
    c.vocab_size = r.positive_int("vocab_size");
    c.hidden_size = r.positive_int("hidden_size");
    c.intermediate_size = r.positive_int("intermediate_size");
    c.num_hidden_layers = r.positive_int("num_hidden_layers");
    r.heads(c, "num_attention_heads", "num_key_value_heads");
    c.max_position_embeddings = r.positive_int("max_position_embeddings", 2048);
    r.rope(c);
    c.rotary = RotaryStyle::NeoX;
    const double factor = r.number("partial_rotary_factor", 0.5);
    c.rotary_dim = static_cast<int64_t>(c.head_dim * factor);  // int() as transformers
    LOPA_CHECK(c.rotary_dim > 0 && c.rotary_dim <= c.head_dim && c.rotary_dim % 2 == 0, src, ": partial_rotary_factor ",
               factor, " gives ", c.rotary_dim, " rotary dims of ", c.head_dim, " (must be even and positive)");
    LOPA_CHECK(!r.boolean("qk_layernorm", false), src, ": qk_layernorm = true is not supported");
    eps_ = r.number("layer_norm_eps", 1e-5);
    act_ = parse_activation(r.string("hidden_act", "gelu_new"), src);
    r.common(c, /*tie_default=*/false);
  }

  ModelSpec spec() const override {
    const auto& c = cfg_;
    const int64_t d = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim,
                  F = c.intermediate_size;
    ModelSpec s;
    s.norm = NormKind::Layer;
    s.norm_eps = eps_;
    s.embed = "model.embed_tokens";
    s.final_norm = "model.final_layernorm";
    s.lm_head = c.tie_word_embeddings ? "" : "lm_head";
    s.lm_head_bias = !c.tie_word_embeddings;
    s.attention_fp32 = true;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      LayerSpec L;
      L.norms = {p + "input_layernorm"};
      auto& P = L.projections;
      P.push_back(column_parallel(Role::Q, Shard::QueryHeads, d, q, p + "self_attn.q_proj", true));
      P.push_back(column_parallel(Role::K, Shard::KVHeads, d, kv, p + "self_attn.k_proj", true));
      P.push_back(column_parallel(Role::V, Shard::KVHeads, d, kv, p + "self_attn.v_proj", true));
      P.push_back(row_parallel(Role::O, Shard::QueryHeads, q, d, p + "self_attn.dense", true));
      P.push_back(column_parallel(Role::FcIn, Shard::Features, d, F, p + "mlp.fc1", true));
      P.push_back(row_parallel(Role::FcOut, Shard::Features, F, d, p + "mlp.fc2", true));
      s.layers.push_back(std::move(L));
    }
    return s;
  }

  at::Tensor block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp) const override {
    return parallel_block(b, x, attention, tp, act_);
  }

  std::vector<std::string> default_lora_modules() const override {
    return {"q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"};
  }

 private:
  double eps_ = 1e-5;
  Activation act_ = Activation::GeluTanh;
};

}  // namespace

std::unique_ptr<Architecture> make_phi(const ConfigReader& r, const std::string&) { return std::make_unique<Phi>(r); }

}  // namespace lopa
