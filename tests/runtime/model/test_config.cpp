// Configs through the architecture registry: the fixture's config, each family's keys and tensor table
// (names, shapes, fused layouts) against values derived by hand from transformers' modeling files,
// and clear errors for bad configs.
#include <gtest/gtest.h>

#include <map>

#include "model_test_util.h"
#include "runtime/base/error.h"
#include "runtime/model/architecture.h"
#include "runtime/model/model_config.h"

using namespace lopa;
using namespace lopa::testing;

namespace {
std::string config_error(const std::string& text) {
  try {
    ModelConfig::from_json_text(text, "cfg.json");
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("cfg.json: ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}
const char* kBase = R"({"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":100,"hidden_size":32,
  "intermediate_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2)";

std::map<std::string, std::vector<int64_t>> table(const std::string& text) {
  auto a = make_architecture(text, "t.json");
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& t : tensor_table(a->spec(), a->config())) out[t.name] = t.shape;
  return out;
}
}  // namespace

TEST(Config, Stories260K) {
  const auto a = load_architecture(stories_dir() + "/config.json");
  const auto& c = a->config();
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(a->spec().norm_eps, 1e-5);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(num_parameters(tensor_table(a->spec(), c)), 260032);  // PROVENANCE.md
  EXPECT_EQ(table(c.json).count("model.layers.0.self_attn.q_proj.bias"), 0u);
}

TEST(Config, LlamaVariants) {
  const std::string qwen = R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":100,
    "hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
    "eos_token_id":[5,7]})";
  auto q = ModelConfig::from_json_text(qwen, "q.json");
  EXPECT_EQ(q.eos_token_ids, (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(q.head_dim, 8);
  auto qt = table(qwen);
  EXPECT_EQ(qt.at("model.layers.1.self_attn.k_proj.bias"), (std::vector<int64_t>{16}));  // q/k/v biased, o not
  EXPECT_EQ(qt.count("model.layers.1.self_attn.o_proj.bias"), 0u);
  auto pt = table(R"({"architectures":["Phi3ForCausalLM"],"vocab_size":100,"hidden_size":32,
    "intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":4})");
  EXPECT_EQ(pt.at("model.layers.0.self_attn.qkv_proj.weight"), (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(pt.at("model.layers.0.mlp.gate_up_proj.weight"), (std::vector<int64_t>{128, 32}));
  EXPECT_EQ(pt.count("model.layers.0.self_attn.q_proj.weight"), 0u);
  auto l3 = ModelConfig::from_json_text(std::string(kBase) + R"(,"rope_scaling":{"rope_type":"llama3","factor":8.0,
    "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64},"attention_bias":true})", "l.json");
  EXPECT_EQ(l3.rope_scaling.type, "llama3");
  EXPECT_EQ(l3.rope_scaling.original_max_position_embeddings, 64);
  EXPECT_EQ(table(l3.json).count("model.layers.0.self_attn.o_proj.bias"), 1u);
  auto lin = ModelConfig::from_json_text(std::string(kBase) + R"(,"rope_scaling":{"type":"linear","factor":2.0}})", "x");
  EXPECT_EQ(lin.rope_scaling.type, "linear");
  // The config text is kept: parsing it again gives the same table.
  EXPECT_EQ(table(l3.json), table(std::string(kBase) + R"(,"rope_scaling":{"rope_type":"llama3","factor":8.0,
    "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64},"attention_bias":true})"));
}

TEST(Config, Gpt2) {
  // GPT-2's keys (n_embd, n_layer, n_head, n_positions; n_inner null = 4 d), Conv1D shapes [in, out].
  const std::string text = R"({"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","vocab_size":50,"n_embd":16,
    "n_layer":2,"n_head":4,"n_positions":32,"n_inner":null,"eos_token_id":49})";
  auto a = make_architecture(text, "g.json");
  EXPECT_EQ(a->config().intermediate_size, 64);
  EXPECT_EQ(a->config().rotary, RotaryStyle::None);
  EXPECT_TRUE(a->config().tie_word_embeddings);
  auto t = table(text);
  EXPECT_EQ(t.at("transformer.h.1.attn.c_attn.weight"), (std::vector<int64_t>{16, 48}));
  EXPECT_EQ(t.at("transformer.h.1.attn.c_attn.bias"), (std::vector<int64_t>{48}));
  EXPECT_EQ(t.at("transformer.h.0.mlp.c_fc.weight"), (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(t.at("transformer.h.0.mlp.c_proj.weight"), (std::vector<int64_t>{64, 16}));
  EXPECT_EQ(t.at("transformer.wpe.weight"), (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(t.count("lm_head.weight"), 0u);
  // 50·16 + 32·16 + 2·(4·16 [ln] + 16·48 + 48 + 16·16 + 16 + 16·64 + 64 + 64·16 + 16) + 2·16
  EXPECT_EQ(num_parameters(tensor_table(a->spec(), a->config())), 800 + 512 + 2 * (64 + 816 + 272 + 1088 + 1040) + 32);
  EXPECT_EQ(a->default_lora_modules(), std::vector<std::string>{"c_attn"});
}

TEST(Config, CodeGenQkvLayout) {
  // 8 heads of 4 dims, d = 32: mp_num = 4 groups of 2 heads, each group [q | v | k] of 8 rows.
  auto a = make_architecture(R"({"architectures":["CodeGenForCausalLM"],"model_type":"codegen","vocab_size":64,
    "n_embd":32,"n_layer":1,"n_head":8,"rotary_dim":2,"n_positions":16})", "c.json");
  EXPECT_EQ(a->config().rotary, RotaryStyle::GptJ);
  EXPECT_EQ(a->config().rotary_dim, 2);
  const auto spec = a->spec();
  std::map<Role, std::vector<int64_t>> rows;
  for (const auto& p : spec.layers[0].projections)
    if (p.module == "transformer.h.0.attn.qkv_proj") rows[p.role] = p.rows;
  // Head 3 is group 1, slot 1: query rows 24 + 4..7, value 24 + 8 + 4.., key 24 + 16 + 4..
  EXPECT_EQ(std::vector<int64_t>(rows[Role::Q].begin() + 12, rows[Role::Q].begin() + 16), (std::vector<int64_t>{28, 29, 30, 31}));
  EXPECT_EQ(rows[Role::V][12], 36);
  EXPECT_EQ(rows[Role::K][12], 44);
  EXPECT_EQ(rows[Role::Q][0], 0);
  EXPECT_EQ(rows[Role::K][0], 16);
  EXPECT_EQ(rows[Role::V][31], 87);  // head 7 (group 3, slot 1), last dim: 72 + 8 + 4 + 3
  auto t = table(a->config().json);
  EXPECT_EQ(t.at("transformer.h.0.attn.qkv_proj.weight"), (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(t.count("transformer.h.0.attn.qkv_proj.bias"), 0u);
  EXPECT_EQ(t.at("lm_head.bias"), (std::vector<int64_t>{64}));
  EXPECT_NE(config_error(R"({"architectures":["CodeGenForCausalLM"],"vocab_size":64,"n_embd":24,"n_layer":1,"n_head":6})")
                .find("divisible by 4"),
            std::string::npos);
}

TEST(Config, Phi) {
  // phi-2's head shape: 80 dims, partial_rotary_factor 0.4 → 32 rotary dims.
  auto a = make_architecture(R"({"architectures":["PhiForCausalLM"],"model_type":"phi","vocab_size":64,"hidden_size":160,
    "intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":2,"partial_rotary_factor":0.4})", "p.json");
  EXPECT_EQ(a->config().head_dim, 80);
  EXPECT_EQ(a->config().rotary_dim, 32);
  auto t = table(a->config().json);
  EXPECT_EQ(t.at("model.layers.0.self_attn.dense.bias"), (std::vector<int64_t>{160}));
  EXPECT_EQ(t.at("model.final_layernorm.bias"), (std::vector<int64_t>{160}));
  EXPECT_EQ(t.at("lm_head.bias"), (std::vector<int64_t>{64}));
  EXPECT_NE(config_error(R"({"architectures":["PhiForCausalLM"],"model_type":"phi-msft","n_embd":64})").find("revision"),
            std::string::npos);
}

TEST(Config, Errors) {
  const auto unsupported = config_error(R"({"architectures":["BloomForCausalLM"],"vocab_size":1})");
  EXPECT_NE(unsupported.find("unsupported architecture 'BloomForCausalLM'"), std::string::npos);
  for (const auto& name : supported_architectures()) EXPECT_NE(unsupported.find(name), std::string::npos) << name;
  EXPECT_NE(config_error(R"({"architectures":["LlamaForCausalLM"],"vocab_size":100,"intermediate_size":64,
    "num_hidden_layers":2,"num_attention_heads":4})").find("missing field 'hidden_size'"), std::string::npos);
  EXPECT_NO_THROW(ModelConfig::from_json_text(std::string(kBase) + "}", "cfg.json"));
  EXPECT_NE(config_error(R"({"architectures":["LlamaForCausalLM"],"vocab_size":100,"hidden_size":32,"intermediate_size":64,
    "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3})").find("not a multiple of num_key_value_heads"),
            std::string::npos);
  EXPECT_NE(config_error(std::string(kBase) + R"(,"rope_scaling":{"type":"yarn","factor":2}})").find("'yarn' is not supported"),
            std::string::npos);
  EXPECT_NE(config_error(std::string(kBase) + R"(,"hidden_size":"big"})").find("must be an integer"), std::string::npos);
  EXPECT_NE(config_error(R"({"model_type":"llama", "architectures":["MistralForCausalLM"]})").find("does not match"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"architectures":["GPT2LMHeadModel"],"vocab_size":50,"n_embd":16,"n_layer":1,"n_head":4,
    "n_positions":8,"activation_function":"mish"})").find("activation 'mish' is not supported"), std::string::npos);
  EXPECT_NE(config_error("{oops").find("not valid JSON"), std::string::npos);
}

TEST(Config, EncoderTables) {
  // Derived by hand from modeling_roberta.py / modeling_bert.py / modeling_codesage.py: d = 8, 2 heads, F = 16,
  // V = 20, 10 positions, one layer.
  const char* dims = R"("vocab_size":20,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,
    "intermediate_size":16,"max_position_embeddings":10)";
  auto r = make_architecture(std::string(R"({"architectures":["RobertaForMaskedLM"],"model_type":"roberta","type_vocab_size":1,)") +
                                 dims + "}", "r.json");
  EXPECT_EQ(r->config().pad_token_id, 1);  // RobertaConfig's default
  EXPECT_FALSE(r->spec().causal);
  EXPECT_EQ(r->pooling(), Pooling::First);
  EXPECT_EQ(r->default_lora_modules(), (std::vector<std::string>{"query", "value"}));
  auto t = table(r->config().json);
  EXPECT_EQ(t.size(), 26u);
  EXPECT_EQ(t.at("roberta.embeddings.word_embeddings.weight"), (std::vector<int64_t>{20, 8}));
  EXPECT_EQ(t.at("roberta.embeddings.position_embeddings.weight"), (std::vector<int64_t>{10, 8}));
  EXPECT_EQ(t.at("roberta.embeddings.token_type_embeddings.weight"), (std::vector<int64_t>{1, 8}));
  EXPECT_EQ(t.at("roberta.embeddings.LayerNorm.bias"), (std::vector<int64_t>{8}));
  EXPECT_EQ(t.at("roberta.encoder.layer.0.attention.self.key.bias"), (std::vector<int64_t>{8}));
  EXPECT_EQ(t.at("roberta.encoder.layer.0.attention.output.LayerNorm.weight"), (std::vector<int64_t>{8}));
  EXPECT_EQ(t.at("roberta.encoder.layer.0.intermediate.dense.weight"), (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(t.at("roberta.encoder.layer.0.output.dense.weight"), (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(t.at("lm_head.dense.weight"), (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(t.at("lm_head.layer_norm.bias"), (std::vector<int64_t>{8}));
  EXPECT_EQ(t.at("lm_head.bias"), (std::vector<int64_t>{20}));
  EXPECT_EQ(t.count("lm_head.decoder.weight"), 0u);  // tied
  EXPECT_EQ(num_parameters(tensor_table(r->spec(), r->config())), 972);

  auto b = make_architecture(std::string(R"({"architectures":["BertModel"],"model_type":"bert",)") + dims + "}", "b.json");
  EXPECT_EQ(b->config().pad_token_id, 0);
  EXPECT_FALSE(b->spec().has_lm_head);
  t = table(b->config().json);
  EXPECT_EQ(t.size(), 21u);
  EXPECT_EQ(t.at("embeddings.token_type_embeddings.weight"), (std::vector<int64_t>{2, 8}));
  EXPECT_EQ(t.at("encoder.layer.0.output.LayerNorm.bias"), (std::vector<int64_t>{8}));
  EXPECT_EQ(num_parameters(tensor_table(b->spec(), b->config())), 872);
  auto bm = make_architecture(std::string(R"({"architectures":["BertForMaskedLM"],"model_type":"bert",)") + dims + "}", "b.json");
  t = table(bm->config().json);
  EXPECT_EQ(t.at("cls.predictions.transform.dense.weight"), (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(t.at("cls.predictions.transform.LayerNorm.weight"), (std::vector<int64_t>{8}));
  EXPECT_EQ(t.at("cls.predictions.bias"), (std::vector<int64_t>{20}));
  EXPECT_EQ(t.count("bert.embeddings.word_embeddings.weight"), 1u);

  auto c = make_architecture(std::string(R"({"architectures":["CodeSageModel"],"model_type":"codesage",)") + dims + "}", "c.json");
  EXPECT_EQ(c->pooling(), Pooling::Mean);
  t = table(c->config().json);
  EXPECT_EQ(t.size(), 16u);
  EXPECT_EQ(t.at("h.0.attn.c_attn.weight"), (std::vector<int64_t>{8, 24}));  // Conv1D [in, out]
  EXPECT_EQ(t.at("h.0.mlp.c_proj.weight"), (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(t.at("ln_f.bias"), (std::vector<int64_t>{8}));
  EXPECT_EQ(num_parameters(tensor_table(c->spec(), c->config())), 856);
  EXPECT_NE(config_error(std::string(R"({"architectures":["BertModel"],"position_embedding_type":"relative_key",)") + dims + "}")
                .find("position_embedding_type 'relative_key' is not supported"),
            std::string::npos);
  EXPECT_NE(config_error(std::string(R"({"architectures":["RobertaModel"],"is_decoder":true,)") + dims + "}").find("is_decoder"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"model_type":"xlm-roberta"})").find("RobertaModel (roberta)"), std::string::npos);
}
