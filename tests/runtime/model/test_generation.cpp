// Generation: batching with left padding, sampling reproducibility, top-p, EOS, soft prompts, and the
// `lopa generate` / `lopa info` / `lopa init-model` commands (incl. their error exits).
#include <gtest/gtest.h>

#include "model_test_util.h"
#include "runtime/model/generation.h"
#include "runtime/model/causal_lm.h"
#include "runtime/io/safetensors.h"

using namespace lopa;
using namespace lopa::testing;

namespace {
const CausalLM& stories() {
  static CausalLM m = CausalLM::load(stories_dir(), ProcessGroup::single(), at::kFloat);
  return m;
}
std::string lopa_cmd(const std::string& args) { return std::string(LOPA_BIN) + " " + args; }
void expect_one_line_error(const RunResult& r) {
  EXPECT_NE(r.status, 0);
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // exactly one line
}
}  // namespace

TEST(Generation, BatchedLeftPaddingEqualsOneByOne) {
  GenerationConfig gc;
  gc.max_new_tokens = 12;
  std::vector<std::vector<int64_t>> prompts = {{1, 403, 407, 261, 378}, {1, 385}, {1, 317, 274, 301}};
  auto batched = generate(stories(), prompts, gc);
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(batched[i], generate(stories(), {prompts[i]}, gc)[0]) << i;
}

TEST(Generation, SamplingIsSeededAndBatchIndependent) {
  GenerationConfig gc;
  gc.max_new_tokens = 20;
  gc.temperature = 1.0;
  gc.top_p = 0.9;
  gc.seed = 5;
  std::vector<int64_t> p = {1, 403, 407};
  auto a = generate(stories(), {p}, gc)[0];
  EXPECT_EQ(a, generate(stories(), {p}, gc)[0]);
  EXPECT_EQ(a, generate(stories(), {{1, 385}, p}, gc)[1]);  // own generator per prompt
  gc.seed = 6;
  EXPECT_NE(a, generate(stories(), {p}, gc)[0]);
  // top-p so small that only the most likely token survives: greedy.
  gc.top_p = 1e-6;
  GenerationConfig greedy;
  greedy.max_new_tokens = 20;
  EXPECT_EQ(generate(stories(), {p}, gc)[0], generate(stories(), {p}, greedy)[0]);
}

TEST(Generation, TopPKeepsTheNucleus) {
  // probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps {0, 1} only.
  auto logits = at::log(at::tensor({0.5, 0.3, 0.15, 0.05}, at::kFloat));
  auto gen = at::detail::createCPUGenerator(0);
  std::set<int64_t> seen;
  for (int i = 0; i < 300; ++i) seen.insert(sample_next(logits, 1.0, 0.7, gen));
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1}));
  EXPECT_EQ(sample_next(logits, 0.0, 1.0, gen), 0);
}

TEST(Generation, StopsAtEos) {
  GenerationConfig gc;
  gc.max_new_tokens = 30;
  std::vector<int64_t> p = {1, 403, 407, 261, 378};
  auto all = generate(stories(), {p}, gc)[0];
  ASSERT_GE(all.size(), 5u);
  gc.eos_token_ids = {all[3]};
  auto cut = generate(stories(), {p}, gc)[0];
  const size_t first = std::find(all.begin(), all.end(), all[3]) - all.begin();
  EXPECT_EQ(cut, std::vector<int64_t>(all.begin(), all.begin() + first + 1));
}

TEST(Generation, SoftPromptEqualsPrependedTokens) {
  const auto& m = stories();
  GenerationConfig gc;
  gc.max_new_tokens = 10;
  auto soft = m.embed(at::tensor({1, 403, 407}, at::kLong).view({1, 3}));
  auto with_soft = generate(m, {{261, 378}, {261}}, gc, soft);
  EXPECT_EQ(with_soft[0], generate(m, {{1, 403, 407, 261, 378}}, gc)[0]);
  EXPECT_EQ(with_soft[1], generate(m, {{1, 403, 407, 261}}, gc)[0]);
}

TEST(Generation, KVPrefixEqualsPrependedTokens) {
  const auto& m = stories();
  KVPrefix prefix;
  {
    at::NoGradGuard g;
    auto c = KVCache::for_model(m, 1, 4);
    m.forward(m.embed(at::tensor({1, 403, 407}, at::kLong).view({1, 3})), {}, &c);
    for (int64_t l = 0; l < m.num_layers(); ++l) {
      prefix.keys.push_back(c.keys(l).clone());
      prefix.values.push_back(c.values(l).clone());
    }
  }
  GenerationConfig gc;
  gc.max_new_tokens = 10;
  EXPECT_EQ(generate(m, {{261, 378}}, gc, {}, &prefix)[0], generate(m, {{1, 403, 407, 261, 378}}, gc)[0]);
}

TEST(Commands, GenerateReproducesTheFixtureSample) {
  const auto s = sample_lines("greedy").at(0);
  auto r = run(lopa_cmd("generate --model " + stories_dir() + " --prompt \"Once upon a time\" --max-new-tokens 60 --json"));
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt_ids"], s["prompt_ids"]);
  EXPECT_EQ(j["generated_ids"], s["generated_ids"]);
  EXPECT_EQ(j["text"], s["text"]);
}

TEST(Commands, InfoDescribesTheCheckpoint) {
  auto r = run(lopa_cmd("info --model " + stories_dir()));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("LlamaForCausalLM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("260032"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("F32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blas:"), std::string::npos) << r.out;
}

TEST(Commands, InitModelWritesALoadableCheckpoint) {
  const auto base = temp_dir("init");
  write_text(base + "/config.json", R"({"architectures":["MistralForCausalLM"],"model_type":"mistral","vocab_size":512,
    "hidden_size":32,"intermediate_size":48,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":1,
    "initializer_range":0.02,"torch_dtype":"bfloat16"})");
  const auto dir = base + "/model";
  auto made = run(lopa_cmd("init-model --config " + base + "/config.json --out " + dir + " --seed 3 --tokenizer " + stories_dir()));
  ASSERT_EQ(made.status, 0) << made.err;
  auto m = CausalLM::load(dir, ProcessGroup::single());
  EXPECT_EQ(m.config().architecture, "MistralForCausalLM");
  auto ck = SafetensorsFile::open(dir + "/model.safetensors");
  EXPECT_EQ(ck.info("model.layers.0.self_attn.k_proj.weight").dtype_code, "BF16");
  EXPECT_TRUE(ck.tensor("model.norm.weight", at::kFloat).equal(at::ones({32})));
  const double sd = ck.tensor("model.layers.0.mlp.up_proj.weight", at::kFloat).std().item<double>();
  EXPECT_NEAR(sd, 0.02, 0.002);
  EXPECT_TRUE(std::filesystem::exists(dir + "/tokenizer.json"));
  auto r = run(lopa_cmd("info --model " + dir));
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST(Commands, BadInputsExitNonZeroWithOneLine) {
  expect_one_line_error(run(lopa_cmd("info --model /nonexistent/model")));
  expect_one_line_error(run(lopa_cmd("generate --model /nonexistent/model --prompt hi")));
  expect_one_line_error(run(lopa_cmd("generate --model " + stories_dir() + " --prompt hi --dtype int3")));
  expect_one_line_error(run(lopa_cmd("generate --model " + stories_dir())));  // --prompt missing
  // A truncated checkpoint.
  const auto dir = temp_dir("trunc");
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    std::filesystem::copy_file(stories_dir() + "/" + f, dir + "/" + f);
  const auto bytes = read_text(stories_dir() + "/model.safetensors");
  write_text(dir + "/model.safetensors", bytes.substr(0, bytes.size() / 2));
  auto r = run(lopa_cmd("generate --model " + dir + " --prompt hi"));
  expect_one_line_error(r);
  EXPECT_NE(r.err.find(dir + "/model.safetensors"), std::string::npos) << r.err;
  r = run(lopa_cmd("info --model " + dir));
  expect_one_line_error(r);
  // Unknown architecture in config.json (with intact weights).
  std::filesystem::copy_file(stories_dir() + "/model.safetensors", dir + "/model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  write_text(dir + "/config.json", R"({"architectures":["XLNetModel"],"vocab_size":10})");
  r = run(lopa_cmd("info --model " + dir));
  expect_one_line_error(r);
  EXPECT_NE(r.err.find("unsupported architecture 'XLNetModel'"), std::string::npos) << r.err;
}
