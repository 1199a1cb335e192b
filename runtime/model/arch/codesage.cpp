// CodeSage (the hub's remote code modeling_codesage.py of codesage/codesage-{small,base,large}):
// GPT-2's pre-LayerNorm blocks with Conv1D weights (c_attn holds q | k | v) and learned positions
// 0 … T-1, but bidirectional attention (padding masked); the sequence embedding is the masked mean of
// the final-LayerNorm states (its pooler_output), L2-normalised as CodeSage's embeddings are used.
// CodeSageModel stores "wte…", "h.0…", "ln_f"; CodeSageForMaskedLM the same under "transformer."
// plus lm_head (no bias; tied to wte unless tie_word_embeddings is false).
#include <nlohmann/json.hpp>

#include "runtime/base/error.h"
#include "runtime/model/activation.h"
#include "runtime/model/architecture.h"
#include "runtime/model/arch/gpt2.h"

namespace lopa {
namespace {

class CodeSage : public Architecture {
 public:
  explicit CodeSage(const ConfigReader& r) {
    auto& c = cfg_;
    const auto& src = r.source();
    mlm_ = r.has("architectures") && r.json()["architectures"][0] == "CodeSageForMaskedLM";
    c.architecture = mlm_ ? "CodeSageForMaskedLM" : "CodeSageModel";
    c.model_type = "codesage";
    c.vocab_size = r.positive_int("vocab_size");
    c.hidden_size = r.positive_int("hidden_size");
    c.num_hidden_layers = r.positive_int("num_hidden_layers");
    r.heads(c, "num_attention_heads", nullptr);
    LOPA_CHECK(c.head_dim * c.num_attention_heads == c.hidden_size, src,
               ": head_dim × num_attention_heads must equal hidden_size");
    c.intermediate_size = r.positive_int("intermediate_size", 4 * c.hidden_size);
    c.max_position_embeddings = r.positive_int("max_position_embeddings", 1024);
    c.rotary = RotaryStyle::None;
    c.rotary_dim = 0;
    eps_ = r.number("layer_norm_epsilon", 1e-5);
    LOPA_CHECK(eps_ > 0, src, ": layer_norm_epsilon must be positive");
    act_ = parse_activation(r.string("activation_function", "gelu_new"), src);
    const auto pos_type = r.string("position_embedding_type", "absolute");
    LOPA_CHECK(pos_type == "absolute", src, ": position_embedding_type '", pos_type, "' is not supported (absolute)");
    r.common(c, /*tie_default=*/true);
  }

  ModelSpec spec() const override {
    const auto& c = cfg_;
    const int64_t d = c.hidden_size, F = c.intermediate_size;
    const std::string pre = mlm_ ? "transformer." : "";
    ModelSpec s;
    s.norm = NormKind::Layer;
    s.norm_eps = eps_;
    s.causal = false;
    s.embed = pre + "wte";
    s.position_embed = pre + "wpe";
    s.final_norm = pre + "ln_f";
    s.has_lm_head = mlm_;
    s.lm_head = mlm_ && !c.tie_word_embeddings ? "lm_head" : "";
    s.optional_prefixes = {"transformer."};
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      s.layers.push_back(gpt2_layer(pre + "h." + std::to_string(l) + ".", d, F));
    }
    return s;
  }

  at::Tensor block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp) const override {
    return gpt2_block(b, x, attention, tp, act_);
  }

  std::vector<std::string> default_lora_modules() const override { return {"c_attn"}; }
  Pooling pooling() const override { return Pooling::Mean; }

 private:
  bool mlm_ = false;
  double eps_ = 1e-5;
  Activation act_ = Activation::GeluTanh;
};

}  // namespace

std::unique_ptr<Architecture> make_codesage(const ConfigReader& r, const std::string&) {
  return std::make_unique<CodeSage>(r);
}

}  // namespace lopa
