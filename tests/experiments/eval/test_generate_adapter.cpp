// `lopa generate --adapter RUN_DIR`: for every method and decoder family (stories260K's Llama, and
// random-init GPT-2, CodeGen and Phi), a briefly trained run's adapter is applied during KV-cached
// generation. Checked against a second code path: the training forward (no KV
// cache, soft prompt / prefix / LoRA applied by method_forward) must pick every generated token, and
// the adapter must change the FM's logits.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/family_models.h"
#include "tests/support/process.h"
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "experiments/eval/adapter_generation.h"
#include "experiments/eval/batching.h"
#include "experiments/eval/prompt_method.h"
#include "runtime/model/causal_lm.h"
#include "runtime/distributed/process_group.h"
#include "runtime/tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using namespace lopa;

namespace {
const std::string kStories = std::string(LOPA_SHARED_DIR) + "/models/stories260K";
std::string model_of(const std::string& family) { return family == "llama" ? kStories : lopa::test::family_model(family); }
const std::string kPrompt = "Lily saw a big red dog in the garden.\nWho is in the story, Tom or Lily? Answer:";

using lopa::test::capture;
}  // namespace

class GenerateWithAdapter : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(GenerateWithAdapter, KvCachedDecodingAppliesTheTrainedMethod) {
  const auto [family, method] = GetParam();
  const auto kModel = model_of(family);
  const auto run_dir =
      (fs::temp_directory_path() / ("lopa_gen_adapter_" + family + "_" + method + "_" + std::to_string(getpid()))).string();
  fs::remove_all(run_dir);
  int rc = 0;
  const std::string lr = method == "fft" ? "0.003" : "0.03";
  capture(std::string(LOPA_BIN) + " train --model " + kModel + " --task story-names --method " + method +
              " --num-virtual-tokens 4 --rank 2 --batch-size 8 --max-length 64 --max-train-examples 64"
              " --max-eval-examples 8 --max-steps 4 --lr " + lr + " --device cpu --out " + run_dir + " 2>&1",
          &rc);
  ASSERT_EQ(rc, 0) << method << ": lopa train failed";

  const int64_t n_new = 12;
  auto out = capture(std::string(LOPA_BIN) + " generate --adapter " + run_dir + " --prompt '" + kPrompt +
                         "' --max-new-tokens " + std::to_string(n_new) + " --json 2>/dev/null",
                     &rc);
  ASSERT_EQ(rc, 0) << method << ": " << out;
  const auto j = nlohmann::json::parse(out);
  const auto prompt_ids = j["prompt_ids"].get<std::vector<int64_t>>();
  const auto generated = j["generated_ids"].get<std::vector<int64_t>>();
  ASSERT_FALSE(generated.empty());

  // Second path: the whole sequence through the training forward, no KV cache.
  auto fm = CausalLM::load(kModel, ProcessGroup::single());
  const auto tok = Tokenizer::from_dir(kModel);
  at::NoGradGuard g;
  std::vector<int64_t> seq = prompt_ids;
  seq.insert(seq.end(), generated.begin(), generated.end() - 1);
  const int64_t T = static_cast<int64_t>(seq.size()), L = static_cast<int64_t>(prompt_ids.size());
  TokenBatch batch;
  batch.ids = at::tensor(seq, at::kLong).view({1, T});
  batch.mask = at::ones({1, T}, at::kLong);
  batch.labels = at::full({1, T}, -100, at::kLong);
  const auto plain = fm.lm_logits(fm.forward(fm.embed(batch.ids), batch.mask).select(1, L - 1)).squeeze(0);

  auto run = load_adapter_run(run_dir, fm, tok);
  at::Tensor enc;
  if (run.method->needs_encoder()) {
    std::vector<TrainItem> items(1);
    items[0].encoder_input = prompt_ids;
    enc = encode_instances(fm, items, {0}, run.cfg.encoder_pooling, 1, 0);
  }
  at::Tensor labels;
  const auto hidden = method_forward(*run.method, fm, batch, enc, labels);
  const int64_t P = hidden.size(1) - T;  // soft-prompt positions
  for (size_t i = 0; i < generated.size(); ++i) {
    const auto logits = fm.lm_logits(hidden.select(1, P + L - 1 + static_cast<int64_t>(i))).squeeze(0);
    EXPECT_GE(logits[generated[i]].item<float>(), logits.max().item<float>() - 1e-4)
        << method << ": token " << i << " is not the argmax of the uncached forward";
  }
  const auto adapted = fm.lm_logits(hidden.select(1, P + L - 1)).squeeze(0);
  EXPECT_GT((adapted - plain).abs().max().item<float>(), 1e-3) << method << ": the adapter does not change the logits";
  fs::remove_all(run_dir);
}

INSTANTIATE_TEST_SUITE_P(Methods, GenerateWithAdapter,
                         ::testing::Combine(::testing::Values("llama", "gpt2", "codegen", "phi"),
                                            ::testing::Values("lopa", "pt", "idpg", "lora", "prefix", "fft")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

TEST(GenerateWithAdapterErrors, NotARunDirectory) {
  int rc = 0;
  auto out = capture(std::string(LOPA_BIN) + " generate --adapter /nonexistent/run --prompt hi 2>&1", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("/nonexistent/run"), std::string::npos) << out;
  EXPECT_NE(out.find("config.ini"), std::string::npos) << out;
}
