// BertModel / BertForMaskedLM (transformers' modeling_bert.py), and the family's shared parts that
// RoBERTa reuses (arch/bert.h). Absolute positions 0 … T-1; the head's activation is hidden_act.
// Hub checkpoints: keys with or without "bert.", TensorFlow-era LayerNorm.gamma / beta (renamed on
// load, runtime/model/describe.cpp), pooler and cls.seq_relationship tensors ignored.
#include "runtime/model/arch/bert.h"

#include <nlohmann/json.hpp>

#include "runtime/base/error.h"
#include "runtime/model/activation.h"
#include "runtime/model/attention.h"

namespace lopa {

BertFamily::BertFamily(const ConfigReader& r, BertNames names, bool head_act_from_config) : n_(std::move(names)) {
  auto& c = cfg_;
  const auto& src = r.source();
  c.architecture = n_.architecture;
  c.model_type = n_.model_type;
  c.vocab_size = r.positive_int("vocab_size");
  c.hidden_size = r.positive_int("hidden_size");
  c.num_hidden_layers = r.positive_int("num_hidden_layers");
  r.heads(c, "num_attention_heads", nullptr);
  LOPA_CHECK(c.head_dim * c.num_attention_heads == c.hidden_size, src, ": head_dim × num_attention_heads must equal hidden_size");
  c.intermediate_size = r.positive_int("intermediate_size");
  c.max_position_embeddings = r.positive_int("max_position_embeddings", 512);
  c.rotary = RotaryStyle::None;
  c.rotary_dim = 0;
  type_vocab_ = r.positive_int("type_vocab_size", 2);
  eps_ = r.number("layer_norm_eps", 1e-12);
  LOPA_CHECK(eps_ > 0, src, ": layer_norm_eps must be positive");
  act_ = parse_activation(r.string("hidden_act", "gelu"), src);
  head_act_ = head_act_from_config ? act_ : Activation::GeluErf;
  const auto pos_type = r.string("position_embedding_type", "absolute");
  LOPA_CHECK(pos_type == "absolute", src, ": position_embedding_type '", pos_type, "' is not supported (absolute)");
  LOPA_CHECK(!r.boolean("is_decoder", false), src, ": is_decoder = true is not supported (", c.architecture,
             " runs as a bidirectional encoder)");
  LOPA_CHECK(!r.boolean("add_cross_attention", false), src, ": add_cross_attention = true is not supported");
  r.common(c, /*tie_default=*/true);
  padding_idx_ = r.has("pad_token_id") ? c.pad_token_id : n_.default_pad;
  c.pad_token_id = padding_idx_;
  LOPA_CHECK(padding_idx_ >= 0 && padding_idx_ < c.vocab_size, src, ": pad_token_id ", padding_idx_,
             " outside the vocabulary (", c.vocab_size, ")");
}

ModelSpec BertFamily::spec() const {
  const auto& c = cfg_;
  const int64_t d = c.hidden_size, F = c.intermediate_size;
  const std::string pre = n_.masked_lm ? n_.prefix : "";
  ModelSpec s;
  s.norm = NormKind::Layer;
  s.norm_eps = eps_;
  s.causal = false;
  s.embed = pre + "embeddings.word_embeddings";
  s.position_embed = pre + "embeddings.position_embeddings";
  s.token_type_embed = pre + "embeddings.token_type_embeddings";
  s.token_types = type_vocab_;
  s.embed_norm = pre + "embeddings.LayerNorm";
  s.final_norm = "";
  s.optional_prefixes = {n_.prefix};
  s.has_lm_head = n_.masked_lm;
  if (n_.masked_lm) {
    s.head_dense = n_.head + "." + n_.head_dense;
    s.head_norm = n_.head + "." + n_.head_norm;
    s.head_act = head_act_;
    s.lm_head = c.tie_word_embeddings ? "" : n_.head + "." + n_.decoder;
    s.output_bias = n_.head + ".bias";  // the decoder's bias is this same parameter in transformers
  }
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = pre + "encoder.layer." + std::to_string(l) + ".";
    LayerSpec L;
    L.norms = {p + "attention.output.LayerNorm", p + "output.LayerNorm"};
    auto& P = L.projections;
    P.push_back(column_parallel(Role::Q, Shard::QueryHeads, d, d, p + "attention.self.query", true));
    P.push_back(column_parallel(Role::K, Shard::KVHeads, d, d, p + "attention.self.key", true));
    P.push_back(column_parallel(Role::V, Shard::KVHeads, d, d, p + "attention.self.value", true));
    P.push_back(row_parallel(Role::O, Shard::QueryHeads, d, d, p + "attention.output.dense", true));
    P.push_back(column_parallel(Role::FcIn, Shard::Features, d, F, p + "intermediate.dense", true));
    P.push_back(row_parallel(Role::FcOut, Shard::Features, F, d, p + "output.dense", true));
    s.layers.push_back(std::move(L));
  }
  return s;
}

at::Tensor BertFamily::block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp) const {
  const auto xq = attention.queries(x);  // the positions that query (all but in a last block with keep_from)
  auto a = attention(b[Role::Q].forward(xq, tp), b[Role::K].forward(x, tp), b[Role::V].forward(x, tp));
  auto y = b.norms[0].forward(b[Role::O].forward(a, tp) + xq);
  auto m = b[Role::FcOut].forward(activate(act_, b[Role::FcIn].forward(y, tp)), tp);
  return b.norms[1].forward(m + y);
}

std::unique_ptr<Architecture> make_bert(const ConfigReader& r, const std::string&) {
  const bool mlm = r.has("architectures") && r.json()["architectures"][0] == "BertForMaskedLM";
  BertNames n;
  n.architecture = mlm ? "BertForMaskedLM" : "BertModel";
  n.model_type = "bert";
  n.prefix = "bert.";
  n.masked_lm = mlm;
  n.head = "cls.predictions";
  n.head_dense = "transform.dense";
  n.head_norm = "transform.LayerNorm";
  n.decoder = "decoder";
  n.default_pad = 0;
  return std::make_unique<BertFamily>(r, std::move(n), /*head_act_from_config=*/true);
}

}  // namespace lopa
