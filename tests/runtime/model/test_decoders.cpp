// The decoder families beyond Llama (GPT-2, CodeGen, Phi) against independent PyTorch references
// written from transformers' modeling files (bench/{gpt2,codegen,phi}_ref.py): random-init checkpoints
// of tiny shapes of each family's real config, with non-zero biases and non-trivial norms, written by
// the reference itself under HF's state-dict names. `lopa logits` must match within 1e-5 on unpadded
// and right-padded inputs, and `lopa generate --prompt-ids` must give the reference's greedy ids.
#include <gtest/gtest.h>

#include "model_test_util.h"
#include "runtime/distributed/process_group.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/kv_cache.h"

using namespace lopa::testing;

namespace {

const std::string kPython = "/usr/bin/python3 ";

std::string ref_script(const std::string& family) { return std::string(LOPA_SOURCE_DIR) + "/bench/" + family + "_ref.py"; }
std::string config_path(const std::string& name) { return std::string(LOPA_SOURCE_DIR) + "/bench/configs/" + name + ".json"; }

// Writes a checkpoint with the reference (its own names and init), optionally from an edited config.
std::string make_reference_model(const std::string& family, const std::string& tag, const std::string& extra_args,
                                 const nlohmann::json& config_edits = nlohmann::json::object()) {
  const auto dir = temp_dir(tag);
  auto cfg = nlohmann::json::parse(read_text(config_path(family + "-tiny")));
  cfg.update(config_edits);
  write_text(dir + "/config.json", cfg.dump(2));
  auto r = run(kPython + ref_script(family) + " init --config " + dir + "/config.json --out " + dir + "/model --seed 3 " +
               extra_args);
  EXPECT_EQ(r.status, 0) << r.err;
  return dir + "/model";
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Inputs: unpadded rows of several lengths and right-padded rows (mask 0 on the tail).
std::string write_inputs(const std::string& dir, int64_t vocab) {
  const std::vector<std::vector<int64_t>> rows = {{5, 17, 42, 99, 3, 7, 250 % vocab},
                                                  {1},
                                                  {11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27}};
  std::string text;
  for (const auto& r : rows) text += nlohmann::json{{"ids", r}}.dump() + "\n";
  text += nlohmann::json{{"ids", {9, 8, 7, 6, 0, 0}}, {"attention_mask", {1, 1, 1, 1, 0, 0}}}.dump() + "\n";
  text += nlohmann::json{{"ids", {200 % vocab, 31, 0, 0, 0}}, {"attention_mask", {1, 1, 0, 0, 0}}}.dump() + "\n";
  write_text(dir + "/inputs.jsonl", text);
  return dir + "/inputs.jsonl";
}

// max |Δ| over the real positions of every input; also checks the shapes agree.
double max_logit_diff(const std::string& ours_text, const std::string& ref_text, const std::string& inputs_path) {
  const auto ours = json_lines(ours_text), ref = json_lines(ref_text), in = json_lines(read_text(inputs_path));
  EXPECT_EQ(ours.size(), in.size());
  EXPECT_EQ(ref.size(), in.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < std::min(ours.size(), ref.size()); ++i) {
    const auto& a = ours[i]["logits"];
    const auto& b = ref[i]["logits"];
    EXPECT_EQ(a.size(), b.size());
    for (size_t t = 0; t < std::min(a.size(), b.size()); ++t) {
      if (in[i].contains("attention_mask") && in[i]["attention_mask"][t] == 0) continue;
      EXPECT_EQ(a[t].size(), b[t].size());
      for (size_t v = 0; v < std::min(a[t].size(), b[t].size()); ++v) {
        worst = std::max(worst, std::abs(a[t][v].get<double>() - b[t][v].get<double>()));
        scale = std::max(scale, std::abs(b[t][v].get<double>()));
      }
    }
  }
  EXPECT_GT(scale, 0.1) << "degenerate model: all logits near zero";
  return worst;
}

void expect_matches_reference(const std::string& family, const std::string& model) {
  const auto dir = temp_dir(family + "_in");
  const auto vocab = nlohmann::json::parse(read_text(model + "/config.json"))["vocab_size"].get<int64_t>();
  const auto inputs = write_inputs(dir, vocab);
  auto ours = run(std::string(LOPA_BIN) + " logits --model " + model + " --input " + inputs);
  ASSERT_EQ(ours.status, 0) << ours.err;
  auto ref = run(kPython + ref_script(family) + " logits --model " + model + " --input " + inputs);
  ASSERT_EQ(ref.status, 0) << ref.err;
  EXPECT_LT(max_logit_diff(ours.out, ref.out, inputs), 1e-5) << family << " " << model;

  // Greedy ids, KV-cached on both sides, until EOS or 12 tokens.
  auto g = run(std::string(LOPA_BIN) + " generate --model " + model + " --prompt-ids 5,17,42 --max-new-tokens 12 --json");
  ASSERT_EQ(g.status, 0) << g.err;
  auto rg = run(kPython + ref_script(family) + " generate --model " + model + " --ids 5,17,42 --max-new-tokens 12");
  ASSERT_EQ(rg.status, 0) << rg.err;
  const auto want = nlohmann::json::parse(rg.out)["generated_ids"];
  EXPECT_EQ(nlohmann::json::parse(g.out)["generated_ids"], want) << family;
  EXPECT_FALSE(want.empty());
}

}  // namespace

TEST(Decoders, Gpt2MatchesReference) { expect_matches_reference("gpt2", make_reference_model("gpt2", "g", "")); }

TEST(Decoders, Gpt2HubLayoutWithoutPrefix) {
  // The hub's gpt2 files: keys without "transformer.", attn.bias / masked_bias buffers beside them.
  expect_matches_reference("gpt2", make_reference_model("gpt2", "gh", "--no-prefix"));
}

TEST(Decoders, CodeGenMatchesReference) {
  expect_matches_reference("codegen", make_reference_model("codegen", "c", "--no-buffers"));
}

TEST(Decoders, CodeGenPublishedLayoutWithBuffers) {
  // As the published checkpoints: causal_mask / masked_bias buffers in the file, ignored.
  expect_matches_reference("codegen", make_reference_model("codegen", "cb", ""));
}

TEST(Decoders, CodeGenPytorchModelBin) {
  // CodeGen-350M-mono's main branch publishes only pytorch_model.bin (torch.save zip archive).
  const auto model = make_reference_model("codegen", "cbin", "--format bin");
  ASSERT_TRUE(std::filesystem::exists(model + "/pytorch_model.bin"));
  ASSERT_FALSE(std::filesystem::exists(model + "/model.safetensors"));
  expect_matches_reference("codegen", model);
}

TEST(Decoders, PhiMatchesReference) { expect_matches_reference("phi", make_reference_model("phi", "p", "")); }

TEST(Decoders, PhiGroupedQueryAttention) {
  expect_matches_reference("phi", make_reference_model("phi", "pg", "", {{"num_key_value_heads", 2}, {"rope_theta", 500.0}}));
}

// forward(…, keep_from) runs the last block for positions keep_from … T-1 only (the training loss and
// scoring read no others): those states and the input gradients through them must equal the whole
// forward's, for every decoder family, a right-padded batch, and a trainable KV prefix (prefix tuning).
TEST(Decoders, KeepFromEqualsTheTailOfTheWholeForward) {
  const std::vector<std::pair<std::string, std::string>> models = {
      {"llama", stories_dir()},
      {"gpt2", make_reference_model("gpt2", "kg", "")},
      {"codegen", make_reference_model("codegen", "kc", "--no-buffers")},
      {"phi", make_reference_model("phi", "kp", "", {{"num_key_value_heads", 2}})}};
  for (const auto& [family, dir] : models) {
    auto fm = lopa::CausalLM::load(dir, lopa::ProcessGroup::single());
    const int64_t B = 2, T = 9, from = 5, d = fm.hidden_size();
    at::manual_seed(7);
    auto ids = at::randint(3, std::min<int64_t>(fm.vocab_size(), 200), {B, T}, at::kLong);
    auto mask = at::ones({B, T}, at::kLong);
    mask[1].narrow(0, 7, 2).fill_(0);  // right padding
    auto weights = at::randn({B, T - from, d});  // a loss on the tail only
    for (const bool prefix : {false, true}) {
      auto run_forward = [&](int64_t keep_from, at::Tensor& grad, at::Tensor& prefix_grad) {
        auto x = fm.embed(ids).detach().requires_grad_(true);
        at::Tensor k0;
        lopa::KVCache cache;
        if (prefix) {  // a 3-position trainable prefix in every layer, as prefix tuning seeds it
          cache = lopa::KVCache::for_model(fm, B, T);
          std::vector<at::Tensor> ks, vs;
          at::manual_seed(11);
          for (int64_t l = 0; l < fm.num_layers(); ++l) {
            const auto shape = std::vector<int64_t>{B, fm.config().num_key_value_heads, 3, fm.config().head_dim};
            ks.push_back(at::randn(shape).requires_grad_(true));
            vs.push_back(at::randn(shape));
          }
          k0 = ks[0];
          cache.set_prefix(ks, vs);
        }
        auto h = fm.forward(x, mask, prefix ? &cache : nullptr, {}, keep_from);
        auto tail = h.narrow(1, from - keep_from, T - from);
        (tail * weights).sum().backward();
        grad = x.grad();
        if (prefix) prefix_grad = k0.grad();
        return tail.detach();
      };
      at::Tensor g_all, g_tail, p_all, p_tail;
      const auto all = run_forward(0, g_all, p_all), tail = run_forward(from, g_tail, p_tail);
      const double scale = all.abs().max().item<double>();
      EXPECT_LT((tail - all).abs().max().item<double>(), 1e-5 * scale) << family << " prefix " << prefix;
      EXPECT_LT((g_tail - g_all).abs().max().item<double>(), 1e-5 * g_all.abs().max().item<double>())
          << family << " prefix " << prefix;
      EXPECT_GT(g_all.narrow(1, 0, from).abs().max().item<double>(), 1e-6) << family;  // earlier inputs matter
      if (prefix) EXPECT_LT((p_tail - p_all).abs().max().item<double>(), 1e-5 * p_all.abs().max().item<double>());
    }
    // The kept rows are the last ones: they differ from the whole output's rows one column earlier.
    auto whole = fm.forward(fm.embed(ids), mask, nullptr, {}, 0).detach();
    auto kept = fm.forward(fm.embed(ids), mask, nullptr, {}, from).detach();
    ASSERT_EQ(kept.size(1), T - from);
    EXPECT_GT((kept - whole.narrow(1, from - 1, T - from)).abs().max().item<double>(), 1e-3) << family;
    EXPECT_THROW(fm.forward(fm.embed(ids), mask, nullptr, {}, T), std::exception);
  }
}

TEST(Decoders, TensorParallelEqualsOneRank) {
  // tp = 2 shards heads (CodeGen's fused qkv by index), MLP features and the vocabulary.
  for (const std::string family : {"gpt2", "codegen", "phi"}) {
    const auto model = make_reference_model(family, family + "tp", family == "codegen" ? "--no-buffers" : "");
    const auto inputs = write_inputs(temp_dir("tpin"), 256);
    auto one = run(std::string(LOPA_BIN) + " logits --model " + model + " --input " + inputs);
    ASSERT_EQ(one.status, 0) << one.err;
    auto two = run(std::string(LOPA_MPIRUN_CMD) + " -np 2 " + LOPA_BIN + " logits --tp 2 --model " + model + " --input " +
                   inputs);
    ASSERT_EQ(two.status, 0) << two.err;
    EXPECT_LT(max_logit_diff(two.out, one.out, inputs), 1e-5) << family;
  }
}

TEST(Decoders, ShapeMismatchNamesTensorShapesAndFile) {
  const auto model = make_reference_model("gpt2", "gbad", "");
  auto cfg = nlohmann::json::parse(read_text(model + "/config.json"));
  cfg["n_inner"] = 128;
  write_text(model + "/config.json", cfg.dump());
  auto r = run(std::string(LOPA_BIN) + " info --model " + model);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("model.safetensors: tensor 'transformer.h.0.mlp.c_fc.weight' has shape [64, 256] but"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("implies [64, 128]"), std::string::npos) << r.err;
}

TEST(Decoders, UnsupportedArchitectureNamesTheSupportedOnes) {
  const auto dir = temp_dir("unsup");
  write_text(dir + "/config.json", R"({"architectures":["BloomForCausalLM"],"model_type":"bloom","vocab_size":10})");
  write_text(dir + "/model.safetensors", "");
  auto r = run(std::string(LOPA_BIN) + " info --model " + dir);
  EXPECT_NE(r.status, 0);
  for (const char* name : {"GPT2LMHeadModel", "CodeGenForCausalLM", "PhiForCausalLM", "LlamaForCausalLM"})
    EXPECT_NE(r.err.find(name), std::string::npos) << r.err;
}

TEST(Decoders, LogitsInputErrorsNameFileAndLine) {
  const auto model = make_reference_model("gpt2", "gerr", "");
  const auto dir = temp_dir("lerr");
  write_text(dir + "/in.jsonl", "{\"ids\": [1, 2]}\n{\"ids\": [1, 2], \"attention_mask\": [1]}\n");
  auto r = run(std::string(LOPA_BIN) + " logits --model " + model + " --input " + dir + "/in.jsonl");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find(dir + "/in.jsonl:2: attention_mask has 1 entries for 2 ids"), std::string::npos) << r.err;
  write_text(dir + "/in.jsonl", "{\"text\": \"hello\"}\n");  // the reference's checkpoint has no tokenizer
  r = run(std::string(LOPA_BIN) + " logits --model " + model + " --input " + dir + "/in.jsonl");
  EXPECT_NE(r.err.find("in.jsonl:1: a 'text' line needs the model's tokenizer files"), std::string::npos) << r.err;
  r = run(std::string(LOPA_BIN) + " generate --model " + model + " --prompt-ids 1,x");
  EXPECT_NE(r.err.find("--prompt-ids: 'x' is not a token id"), std::string::npos) << r.err;
}
