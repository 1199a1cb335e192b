// LlamaConfig: the fixture's config, the architecture variants, and clear errors for bad configs.
#include <gtest/gtest.h>

#include "model_test_util.h"
#include "runtime/error.h"
#include "runtime/model_config.h"

using namespace lopa;
using namespace lopa::testing;

namespace {
std::string config_error(const std::string& text) {
  try {
    LlamaConfig::from_json_text(text, "cfg.json");
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
}  // namespace

TEST(Config, Stories260K) {
  const auto c = LlamaConfig::from_file(stories_dir() + "/config.json");
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.num_parameters(), 260032);  // PROVENANCE.md
  EXPECT_FALSE(c.qkv_bias);
}

TEST(Config, Variants) {
  auto q = LlamaConfig::from_json_text(R"({"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":100,
    "hidden_size":32,"intermediate_size":64,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
    "eos_token_id":[5,7]})", "q.json");
  EXPECT_TRUE(q.qkv_bias);
  EXPECT_FALSE(q.o_bias);
  EXPECT_EQ(q.eos_token_ids, (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(q.head_dim, 8);
  auto p = LlamaConfig::from_json_text(R"({"architectures":["Phi3ForCausalLM"],"vocab_size":100,"hidden_size":32,
    "intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":4})", "p.json");
  EXPECT_TRUE(p.fused_qkv && p.fused_gate_up);
  EXPECT_EQ(p.num_key_value_heads, 4);
  EXPECT_EQ(p.hf_tensor_shapes()[2].first, "model.layers.0.self_attn.qkv_proj.weight");
  EXPECT_EQ(p.hf_tensor_shapes()[2].second, (std::vector<int64_t>{96, 32}));
  auto l3 = LlamaConfig::from_json_text(std::string(kBase) + R"(,"rope_scaling":{"rope_type":"llama3","factor":8.0,
    "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":64},"attention_bias":true})", "l.json");
  EXPECT_EQ(l3.rope_scaling.type, "llama3");
  EXPECT_EQ(l3.rope_scaling.original_max_position_embeddings, 64);
  EXPECT_TRUE(l3.qkv_bias && l3.o_bias);
  auto lin = LlamaConfig::from_json_text(std::string(kBase) + R"(,"rope_scaling":{"type":"linear","factor":2.0}})", "x");
  EXPECT_EQ(lin.rope_scaling.type, "linear");
  // to_json round trip keeps the architecture.
  auto again = LlamaConfig::from_json_text(l3.to_json(), "again");
  EXPECT_EQ(again.hf_tensor_shapes(), l3.hf_tensor_shapes());
  EXPECT_EQ(again.rope_scaling.factor, 8.0);
}

TEST(Config, Errors) {
  EXPECT_NE(config_error(R"({"architectures":["GPT2LMHeadModel"],"vocab_size":1})").find("unsupported architecture 'GPT2LMHeadModel'"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"architectures":["LlamaForCausalLM"],"vocab_size":100,"intermediate_size":64,
    "num_hidden_layers":2,"num_attention_heads":4})").find("missing field 'hidden_size'"), std::string::npos);
  EXPECT_NO_THROW(LlamaConfig::from_json_text(std::string(kBase) + "}", "cfg.json"));
  EXPECT_NE(config_error(R"({"architectures":["LlamaForCausalLM"],"vocab_size":100,"hidden_size":32,"intermediate_size":64,
    "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3})").find("not a multiple of num_key_value_heads"),
            std::string::npos);
  EXPECT_NE(config_error(std::string(kBase) + R"(,"rope_scaling":{"type":"yarn","factor":2}})").find("'yarn' is not supported"),
            std::string::npos);
  EXPECT_NE(config_error(std::string(kBase) + R"(,"hidden_size":"big"})").find("must be an integer"), std::string::npos);
  EXPECT_NE(config_error(R"({"model_type":"llama", "architectures":["MistralForCausalLM"]})").find("does not match"),
            std::string::npos);
  EXPECT_NE(config_error("{oops").find("not valid JSON"), std::string::npos);
}
