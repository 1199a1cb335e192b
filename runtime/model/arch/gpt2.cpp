// GPT2LMHeadModel (transformers' modeling_gpt2.py): learned absolute positions, pre-LayerNorm blocks
// x += c_proj(attn(ln_1(x))); x += mlp.c_proj(act(c_fc(ln_2(x)))), Conv1D weights stored [in, out]
// (c_attn holds q | k | v), the LM head tied to wte. Hub checkpoints (gpt2, distilgpt2) store the
// keys without the "transformer." prefix, with attn.bias / masked_bias buffers that are ignored.
#include "runtime/model/arch/gpt2.h"

#include "runtime/base/error.h"
#include "runtime/model/activation.h"
#include "runtime/model/architecture.h"
#include "runtime/model/attention.h"

namespace lopa {

LayerSpec gpt2_layer(const std::string& p, int64_t d, int64_t F) {
  LayerSpec L;
  L.norms = {p + "ln_1", p + "ln_2"};
  auto& P = L.projections;
  P.push_back(column_parallel(Role::Q, Shard::QueryHeads, d, d, p + "attn.c_attn", true, 0));
  P.push_back(column_parallel(Role::K, Shard::KVHeads, d, d, p + "attn.c_attn", true, d));
  P.push_back(column_parallel(Role::V, Shard::KVHeads, d, d, p + "attn.c_attn", true, 2 * d));
  P.push_back(row_parallel(Role::O, Shard::QueryHeads, d, d, p + "attn.c_proj", true));
  P.push_back(column_parallel(Role::FcIn, Shard::Features, d, F, p + "mlp.c_fc", true));
  P.push_back(row_parallel(Role::FcOut, Shard::Features, F, d, p + "mlp.c_proj", true));
  for (auto& q : P) q.transposed = true;  // Conv1D
  return L;
}

at::Tensor gpt2_block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp, Activation act) {
  auto h = b.norms[0].forward(x);
  auto a =
      attention(b[Role::Q].forward(attention.queries(h), tp), b[Role::K].forward(h, tp), b[Role::V].forward(h, tp));
  auto y = b[Role::O].forward(a, tp) + attention.queries(x);
  h = b.norms[1].forward(y);
  return y + b[Role::FcOut].forward(activate(act, b[Role::FcIn].forward(h, tp)), tp);
}

namespace {

class Gpt2 : public Architecture {
 public:
  explicit Gpt2(const ConfigReader& r) {
    auto& c = cfg_;
    const auto& src = r.source();
    c.architecture = "GPT2LMHeadModel";
    c.model_type = "gpt2";
    c.vocab_size = r.positive_int("vocab_size");
    c.hidden_size = r.positive_int_any({"n_embd", "hidden_size"});
    c.num_hidden_layers = r.positive_int_any({"n_layer", "num_hidden_layers"});
    r.heads(c, r.has("n_head") ? "n_head" : "num_attention_heads", nullptr);
    c.intermediate_size = r.positive_int("n_inner", 4 * c.hidden_size);
    c.max_position_embeddings = r.positive_int_any({"n_positions", "max_position_embeddings"});
    c.rotary = RotaryStyle::None;
    c.rotary_dim = 0;
    eps_ = r.number("layer_norm_epsilon", 1e-5);
    act_ = parse_activation(r.string("activation_function", "gelu_new"), src);
    LOPA_CHECK(r.boolean("scale_attn_weights", true), src, ": scale_attn_weights = false is not supported");
    LOPA_CHECK(!r.boolean("scale_attn_by_inverse_layer_idx", false), src,
               ": scale_attn_by_inverse_layer_idx = true is not supported");
    LOPA_CHECK(!r.boolean("reorder_and_upcast_attn", false), src, ": reorder_and_upcast_attn = true is not supported");
    LOPA_CHECK(!r.boolean("add_cross_attention", false), src, ": add_cross_attention = true is not supported");
    r.common(c, /*tie_default=*/true);
  }

  ModelSpec spec() const override {
    const auto& c = cfg_;
    const int64_t d = c.hidden_size, F = c.intermediate_size;
    ModelSpec s;
    s.norm = NormKind::Layer;
    s.norm_eps = eps_;
    s.embed = "transformer.wte";
    s.position_embed = "transformer.wpe";
    s.final_norm = "transformer.ln_f";
    s.lm_head = c.tie_word_embeddings ? "" : "lm_head";
    s.optional_prefixes = {"transformer."};
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      s.layers.push_back(gpt2_layer("transformer.h." + std::to_string(l) + ".", d, F));
    }
    return s;
  }

  at::Tensor block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp) const override {
    return gpt2_block(b, x, attention, tp, act_);
  }

  std::vector<std::string> default_lora_modules() const override { return {"c_attn"}; }

 private:
  double eps_ = 1e-5;
  Activation act_ = Activation::GeluTanh;
};

}  // namespace

std::unique_ptr<Architecture> make_gpt2(const ConfigReader& r, const std::string&) { return std::make_unique<Gpt2>(r); }

}  // namespace lopa
