// CodeGenForCausalLM (transformers' modeling_codegen.py; Salesforce/codegen-*): one LayerNorm per block
// and a parallel residual x + attn(ln_1(x)) + mlp(ln_1(x)); GPT-J interleaved rotary on the first
// rotary_dim dims of each head; q·kᵀ and softmax in float32; an untied LM head with bias. Its fused
// qkv_proj keeps the layout of the model-parallel (mp_num = 4) training code: the output is 4 groups,
// each query | value | key for a quarter of the heads, so a head's rows are found by index, and a
// tensor-parallel rank reads only its heads' rows.
#include "runtime/base/error.h"
#include "runtime/model/activation.h"
#include "runtime/model/architecture.h"
#include "runtime/model/attention.h"

namespace lopa {
namespace {

constexpr int64_t kMpNum = 4;

class CodeGen : public Architecture {
 public:
  explicit CodeGen(const ConfigReader& r) {
    auto& c = cfg_;
    const auto& src = r.source();
    c.architecture = "CodeGenForCausalLM";
    c.model_type = "codegen";
    c.vocab_size = r.positive_int("vocab_size");
    c.hidden_size = r.positive_int("n_embd");
    c.num_hidden_layers = r.positive_int("n_layer");
    r.heads(c, "n_head", nullptr);
    LOPA_CHECK(c.num_attention_heads % kMpNum == 0, src, ": CodeGen's qkv layout needs n_head divisible by ", kMpNum,
               ", got ", c.num_attention_heads);
    c.intermediate_size = r.positive_int("n_inner", 4 * c.hidden_size);
    c.max_position_embeddings = r.positive_int("n_positions", 2048);
    c.rotary = RotaryStyle::GptJ;
    c.rotary_dim = r.positive_int("rotary_dim", c.head_dim);
    LOPA_CHECK(c.rotary_dim <= c.head_dim && c.rotary_dim % 2 == 0, src, ": rotary_dim ", c.rotary_dim,
               " must be even and at most the head dim ", c.head_dim);
    c.rope_theta = 10000.0;
    eps_ = r.number("layer_norm_epsilon", 1e-5);
    act_ = parse_activation(r.string("activation_function", "gelu_new"), src);
    r.common(c, /*tie_default=*/false);
  }

  ModelSpec spec() const override {
    const auto& c = cfg_;
    const int64_t d = c.hidden_size, F = c.intermediate_size, H = c.num_attention_heads, hd = c.head_dim;
    // Row of (head h, dim e) of query / value / key in qkv_proj's output: group g = h / (H/4) holds
    // [query | value | key] of its H/4 heads, each block H/4 · hd = d/4 rows.
    const int64_t per_group = H / kMpNum, local = d / kMpNum;
    auto rows = [&](int64_t which) {
      std::vector<int64_t> r(d);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t e = 0; e < hd; ++e)
          r[h * hd + e] = (h / per_group) * 3 * local + which * local + (h % per_group) * hd + e;
      return r;
    };
    ModelSpec s;
    s.norm = NormKind::Layer;
    s.norm_eps = eps_;
    s.embed = "transformer.wte";
    s.final_norm = "transformer.ln_f";
    s.lm_head = "lm_head";
    s.lm_head_bias = true;
    s.attention_fp32 = true;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "transformer.h." + std::to_string(l) + ".";
      LayerSpec L;
      L.norms = {p + "ln_1"};
      auto& P = L.projections;
      const int64_t which[3] = {0, 2, 1};  // q, k, v: query | value | key inside each group
      const Role roles[3] = {Role::Q, Role::K, Role::V};
      for (int i = 0; i < 3; ++i) {
        auto q = column_parallel(roles[i], i == 0 ? Shard::QueryHeads : Shard::KVHeads, d, d, p + "attn.qkv_proj", false);
        q.rows = rows(which[i]);
        P.push_back(std::move(q));
      }
      P.push_back(row_parallel(Role::O, Shard::QueryHeads, d, d, p + "attn.out_proj", false));
      P.push_back(column_parallel(Role::FcIn, Shard::Features, d, F, p + "mlp.fc_in", true));
      P.push_back(row_parallel(Role::FcOut, Shard::Features, F, d, p + "mlp.fc_out", true));
      s.layers.push_back(std::move(L));
    }
    return s;
  }

  at::Tensor block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp) const override {
    return parallel_block(b, x, attention, tp, act_);
  }

  std::vector<std::string> default_lora_modules() const override { return {"qkv_proj"}; }

 private:
  double eps_ = 1e-5;
  Activation act_ = Activation::GeluTanh;
};

}  // namespace

std::unique_ptr<Architecture> make_codegen(const ConfigReader& r, const std::string&) {
  return std::make_unique<CodeGen>(r);
}

}  // namespace lopa
