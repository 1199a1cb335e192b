// The Llama family (transformers' modeling_llama.py and its copies): LlamaForCausalLM (Llama 2/3,
// CodeLlama, DeepSeek-Coder), Mistral (sliding window), Qwen2 (q/k/v bias), Phi-3 (fused qkv_proj and
// gate_up_proj). Pre-norm blocks: x += o(attn(rms(x))); x += down(act(gate(rms(x))) · up(rms(x))).
#include "runtime/base/error.h"
#include "runtime/model/activation.h"
#include "runtime/model/architecture.h"
#include "runtime/model/attention.h"

namespace lopa {
namespace {

class Llama : public Architecture {
 public:
  Llama(const ConfigReader& r, const std::string& type) {
    auto& c = cfg_;
    c.model_type = type;
    c.architecture = type == "llama" ? "LlamaForCausalLM" : type == "mistral" ? "MistralForCausalLM"
                     : type == "qwen2" ? "Qwen2ForCausalLM" : "Phi3ForCausalLM";
    const auto& src = r.source();
    c.vocab_size = r.positive_int("vocab_size");
    c.hidden_size = r.positive_int("hidden_size");
    c.intermediate_size = r.positive_int("intermediate_size");
    c.num_hidden_layers = r.positive_int("num_hidden_layers");
    r.heads(c, "num_attention_heads", "num_key_value_heads");
    LOPA_CHECK(c.head_dim % 2 == 0, src, ": head_dim ", c.head_dim, " must be even for rotary embeddings");
    c.max_position_embeddings = r.positive_int("max_position_embeddings", 2048);
    eps_ = r.number("rms_norm_eps", 1e-6);
    LOPA_CHECK(eps_ > 0, src, ": rms_norm_eps must be positive");
    r.rope(c);
    c.rotary = RotaryStyle::NeoX;
    c.rotary_dim = c.head_dim;
    LOPA_CHECK(r.number("partial_rotary_factor", 1.0) == 1.0, src, ": partial_rotary_factor != 1 is not supported for ",
               c.architecture);
    act_ = parse_activation(r.string("hidden_act", "silu"), src);
    LOPA_CHECK(act_ == Activation::Silu, src, ": hidden_act '", r.string("hidden_act", ""), "' is not supported (only silu)");
    const bool attention_bias = r.boolean("attention_bias", false);
    mlp_bias_ = r.boolean("mlp_bias", false);
    if (type == "qwen2") {
      qkv_bias_ = true;
    } else if (type == "llama") {
      qkv_bias_ = o_bias_ = attention_bias;
    }
    fused_ = type == "phi3";
    if (type == "mistral" || (type == "qwen2" && r.boolean("use_sliding_window", false)))
      if (r.has("sliding_window") && r.json()["sliding_window"].is_number_integer())
        c.sliding_window = r.json()["sliding_window"].get<int64_t>();
    r.common(c, /*tie_default=*/false);
  }

  ModelSpec spec() const override {
    const auto& c = cfg_;
    const int64_t d = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim,
                  F = c.intermediate_size;
    ModelSpec s;
    s.norm = NormKind::RMS;
    s.norm_eps = eps_;
    s.embed = "model.embed_tokens";
    s.final_norm = "model.norm";
    s.lm_head = c.tie_word_embeddings ? "" : "lm_head";
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      LayerSpec L;
      L.norms = {p + "input_layernorm", p + "post_attention_layernorm"};
      auto& P = L.projections;
      if (fused_) {
        P.push_back(column_parallel(Role::Q, Shard::QueryHeads, d, q, p + "self_attn.qkv_proj", false, 0));
        P.push_back(column_parallel(Role::K, Shard::KVHeads, d, kv, p + "self_attn.qkv_proj", false, q));
        P.push_back(column_parallel(Role::V, Shard::KVHeads, d, kv, p + "self_attn.qkv_proj", false, q + kv));
      } else {
        P.push_back(column_parallel(Role::Q, Shard::QueryHeads, d, q, p + "self_attn.q_proj", qkv_bias_));
        P.push_back(column_parallel(Role::K, Shard::KVHeads, d, kv, p + "self_attn.k_proj", qkv_bias_));
        P.push_back(column_parallel(Role::V, Shard::KVHeads, d, kv, p + "self_attn.v_proj", qkv_bias_));
      }
      P.push_back(row_parallel(Role::O, Shard::QueryHeads, q, d, p + "self_attn.o_proj", o_bias_));
      if (fused_) {
        P.push_back(column_parallel(Role::Gate, Shard::Features, d, F, p + "mlp.gate_up_proj", false, 0));
        P.push_back(column_parallel(Role::Up, Shard::Features, d, F, p + "mlp.gate_up_proj", false, F));
      } else {
        P.push_back(column_parallel(Role::Gate, Shard::Features, d, F, p + "mlp.gate_proj", mlp_bias_));
        P.push_back(column_parallel(Role::Up, Shard::Features, d, F, p + "mlp.up_proj", mlp_bias_));
      }
      P.push_back(row_parallel(Role::Down, Shard::Features, F, d, p + "mlp.down_proj", mlp_bias_));
      s.layers.push_back(std::move(L));
    }
    return s;
  }

  at::Tensor block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp) const override {
    auto h = b.norms[0].forward(x);
    auto a =
        attention(b[Role::Q].forward(attention.queries(h), tp), b[Role::K].forward(h, tp), b[Role::V].forward(h, tp));
    auto y = attention.queries(x) + b[Role::O].forward(a, tp);
    h = b.norms[1].forward(y);
    return y + b[Role::Down].forward(activate(act_, b[Role::Gate].forward(h, tp)) * b[Role::Up].forward(h, tp), tp);
  }

  std::vector<std::string> default_lora_modules() const override {
    if (fused_) return {"qkv_proj"};
    return {"q_proj", "v_proj"};
  }

 private:
  double eps_ = 1e-6;
  Activation act_ = Activation::Silu;
  bool qkv_bias_ = false, o_bias_ = false, mlp_bias_ = false, fused_ = false;
};

}  // namespace

std::unique_ptr<Architecture> make_llama(const ConfigReader& r, const std::string& model_type) {
  return std::make_unique<Llama>(r, model_type);
}

}  // namespace lopa
