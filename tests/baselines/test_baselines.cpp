// Every method on the real stories260K FM (d = 64, 5 layers, 8 heads, 4 KV heads of 8):
// trainable-parameter counts equal the formulas written out here; a loss through the method gives
// gradients to every trainable parameter and to no FM weight (FFT: to every FM weight); LoRA's delta
// equals x Aᵀ Bᵀ·α/r computed independently and is saved under PEFT's tensor names; prefix tuning's
// prefix changes the output and trains.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "baselines/full_finetune.h"
#include "baselines/idpg.h"
#include "baselines/lora.h"
#include "baselines/prefix_tuning.h"
#include "baselines/prompt_tuning.h"
#include "experiments/eval/batching.h"
#include "experiments/eval/prompt_method.h"
#include "lopa/lopa_prompt.h"
#include "runtime/model/causal_lm.h"
#include "runtime/base/error.h"
#include "runtime/io/safetensors.h"

using namespace lopa;

namespace {
const std::string kModel = std::string(LOPA_SHARED_DIR) + "/models/stories260K";

CausalLM load() { return CausalLM::load(kModel, ProcessGroup::single()); }

// Two short sequences with targets on their last tokens.
TokenBatch tiny_batch() {
  TokenBatch b;
  b.ids = torch::tensor({1, 400, 56, 73, 90, 12, 1, 33, 44, 55, 66, 0}, torch::kLong).view({2, 6});
  b.mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, torch::kLong).view({2, 6});
  b.labels = torch::tensor({-100, -100, -100, -100, 90, 12, -100, -100, -100, 55, 66, -100}, torch::kLong).view({2, 6});
  b.num_target_tokens = 4;
  return b;
}

void expect_only_method_grads(Method& m, CausalLM& fm, bool fm_trainable) {
  torch::manual_seed(0);
  auto batch = tiny_batch();
  auto enc = torch::randn({2, fm.hidden_size()});
  at::Tensor labels;
  auto hidden = method_forward(m, fm, batch, enc, labels);
  auto loss = fm.lm_loss(hidden, labels);
  ASSERT_TRUE(loss.requires_grad()) << m.name();
  loss.backward();
  for (auto& [name, p] : m.parameters()) {
    ASSERT_TRUE(p.grad().defined()) << m.name() << " " << name;
  }
  if (!fm_trainable) {
    for (const auto& p : fm.named_parameters()) EXPECT_FALSE(p.tensor.grad().defined()) << m.name() << " " << p.name;
  }
}
}  // namespace

TEST(Baselines, PromptTuningCountAndGradients) {
  auto fm = load();
  PromptTuningOptions o;
  o.num_tokens = 7;
  o.model_dim = 64;
  PromptTuning pt(o);
  EXPECT_EQ(pt.num_trainable_parameters(), 7 * 64);
  EXPECT_EQ(count_elements(pt.parameters()), 7 * 64);
  expect_only_method_grads(pt, fm, false);
}

TEST(Baselines, PromptTuningFromTextCyclesTokens) {
  auto e = torch::arange(6, torch::kFloat).view({3, 2});
  auto z = prompt_from_text_embeddings(e, 5);
  EXPECT_TRUE(torch::equal(z, torch::tensor({0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 0.f, 1.f, 2.f, 3.f}).view({5, 2})));
}

TEST(Baselines, IdpgCountAndGradients) {
  auto fm = load();
  for (auto [H, h, m] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{64, 256, 5}, {64, 16, 10}, {32, 8, 1}}) {
    IdpgOptions o;
    o.encoder_dim = H;
    o.head_dim = h;
    o.num_tokens = m;
    o.model_dim = 64;
    Idpg idpg(o);
    const int64_t expected = H * h + h + (h + 1) * m * 64;
    EXPECT_EQ(idpg.num_trainable_parameters(), expected);
    EXPECT_EQ(count_elements(idpg.parameters()), expected);
  }
  IdpgOptions o;
  o.encoder_dim = 64;
  o.head_dim = 16;
  o.num_tokens = 3;
  o.model_dim = 64;
  Idpg idpg(o);
  expect_only_method_grads(idpg, fm, false);
}

TEST(Baselines, LopaOnTheFmGetsGradientsFmDoesNot) {
  auto fm = load();
  LopaOptions o;
  o.encoder_dim = 64;
  o.num_tokens = 4;
  o.model_dim = 64;
  o.rank = 2;
  LopaPrompt p(o);
  EXPECT_EQ(count_elements(p.parameters()), 2 * (64 * 64 + 64) + (64 + 1) * 2 * (4 + 64) + 4 * 64);
  expect_only_method_grads(p, fm, false);
}

TEST(Baselines, LoraCountGradientsAndNumerics) {
  auto fm = load();
  torch::manual_seed(1);
  LoraOptions o;
  o.rank = 4;
  o.alpha = 8;
  o.dropout = 0;
  Lora lora(o, fm);
  // q: 64→64, k and v: 64→32 (4 KV heads × 8), five layers.
  const int64_t expected = 5 * 4 * ((64 + 64) + (64 + 32) + (64 + 32));
  EXPECT_EQ(lora.num_trainable_parameters(), expected);
  EXPECT_EQ(count_elements(lora.parameters()), expected);
  lora.attach(fm);
  // B starts at zero: the adapted FM is the FM.
  auto x = torch::randn({2, 3, 64});
  auto& q = fm.projection(2, "q_proj");
  auto base = torch::matmul(x, q.weight.t());
  EXPECT_TRUE(torch::allclose(q.forward(x, *fm.process_group().tp), base, 1e-5, 1e-6));
  // With B set: y = x Wᵀ + (α/r) x Aᵀ Bᵀ.
  auto params = lora.parameters();
  at::Tensor A, B;
  for (auto& [n, t] : params) {
    if (n == "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight") A = t;
    if (n == "base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight") B = t;
  }
  ASSERT_TRUE(A.defined() && B.defined());
  EXPECT_EQ(A.sizes(), (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(B.sizes(), (std::vector<int64_t>{64, 4}));
  {
    torch::NoGradGuard g;
    B.normal_(0, 0.1);
  }
  auto expect = base + 2.0 * torch::matmul(torch::matmul(x, A.t().detach()), B.t().detach());
  EXPECT_TRUE(torch::allclose(q.forward(x, *fm.process_group().tp), expect, 1e-5, 1e-5));
  expect_only_method_grads(lora, fm, false);
  lora.detach(fm);
  EXPECT_FALSE(fm.projection(2, "q_proj").adapter);
}

TEST(Baselines, LoraSavesPeftLayoutAndLoads) {
  auto fm = load();
  torch::manual_seed(2);
  LoraOptions o;
  o.rank = 2;
  o.targets = parse_lora_targets("all-linear");
  EXPECT_EQ(resolve_lora_modules(o.targets, fm),
            (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}));
  // Roles and module names resolve to the same modules; "auto" is PEFT's default for Llama.
  EXPECT_EQ(resolve_lora_modules(parse_lora_targets("v,q_proj"), fm), (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(resolve_lora_modules(parse_lora_targets("auto"), fm), (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_THROW(resolve_lora_modules(parse_lora_targets("c_attn"), fm), lopa::Error);
  Lora a(o, fm);
  for (auto& [n, t] : a.parameters()) {
    torch::NoGradGuard g;
    t.normal_();
  }
  const auto dir = std::filesystem::temp_directory_path() / "lopa_test_lora";
  std::filesystem::remove_all(dir);
  a.save(dir.string());
  auto f = SafetensorsFile::open((dir / "adapter_model.safetensors").string());
  EXPECT_EQ(f.info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape, (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(f.info("base_model.model.model.layers.4.mlp.down_proj.lora_A.weight").shape, (std::vector<int64_t>{2, 172}));
  EXPECT_EQ(f.info("base_model.model.model.layers.4.mlp.down_proj.lora_B.weight").shape, (std::vector<int64_t>{64, 2}));
  EXPECT_EQ(f.names().size(), 5u * 7u * 2u);
  std::ifstream cfg(dir / "adapter_config.json");
  auto j = nlohmann::json::parse(cfg);
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["r"], 2);
  Lora b(o, fm);
  b.load(dir.string());
  auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
  std::filesystem::remove_all(dir);
}

TEST(Baselines, PrefixTuningCountChangesOutputAndTrains) {
  auto fm = load();
  for (bool proj : {false, true}) {
    PrefixTuningOptions o;
    o.num_tokens = 3;
    o.projection = proj;
    o.projection_dim = 16;
    PrefixTuning pre(o, fm);
    // Per layer keys and values of 4 KV heads × 8.
    const int64_t width = 5 * 2 * 4 * 8;
    const int64_t expected = proj ? 3 * 64 + 64 * 16 + 16 + (16 + 1) * width : 3 * width;
    EXPECT_EQ(pre.num_trainable_parameters(), expected);
    EXPECT_EQ(count_elements(pre.parameters()), expected);
    // The prefix is attended to: outputs differ from the plain FM.
    auto batch = tiny_batch();
    at::Tensor labels;
    torch::NoGradGuard g;
    auto with = method_forward(pre, fm, batch, at::Tensor(), labels);
    auto plain = fm.forward(fm.embed(batch.ids), batch.mask);
    EXPECT_FALSE(torch::allclose(with, plain, 1e-4, 1e-4));
  }
  PrefixTuningOptions o;
  o.num_tokens = 2;
  PrefixTuning pre(o, fm);
  expect_only_method_grads(pre, fm, false);
}

TEST(Baselines, FullFinetuneTrainsEveryWeightAndSavesHfCheckpoint) {
  auto fm = load();
  FullFinetune fft(fm);
  EXPECT_EQ(fft.num_trainable_parameters(), fm.num_parameters());
  fft.attach(fm);
  expect_only_method_grads(fft, fm, true);
  for (const auto& p : fm.named_parameters()) EXPECT_TRUE(p.tensor.grad().defined()) << p.name;
  const auto dir = std::filesystem::temp_directory_path() / "lopa_test_fft";
  std::filesystem::remove_all(dir);
  fft.save(dir.string());
  EXPECT_TRUE(std::filesystem::exists(dir / "config.json"));
  auto again = CausalLM::load(dir.string(), ProcessGroup::single());
  auto x = torch::tensor({1, 5, 9}, torch::kLong).view({1, 3});
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::allclose(again.forward(again.embed(x), {}), fm.forward(fm.embed(x), {}), 1e-5, 1e-6));
  fft.detach(fm);
  std::filesystem::remove_all(dir);
}
