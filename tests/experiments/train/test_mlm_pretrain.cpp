// Masked-LM pretraining: BERT's masking (15 % of the non-special tokens; of those 80 % <mask>, 10 %
// random, 10 % kept) checked against its definition by counting over many draws (bounds of 5 binomial
// standard deviations), and a random-init tiny RoBERTa trained on SST-2 text whose loss falls.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "experiments/train/mlm_pretrain.h"
#include "runtime/base/error.h"

namespace fs = std::filesystem;
using namespace lopa;

namespace {
// Within k standard deviations of a binomial share p over n draws.
void expect_share(double got, double p, int64_t n, const char* what, double k = 5) {
  const double sd = std::sqrt(p * (1 - p) / static_cast<double>(n));
  EXPECT_NEAR(got, p, k * sd) << what << " over " << n;
}
}  // namespace

TEST(MlmMasking, RatesFollowBertsRecipe) {
  const int64_t B = 128, T = 256, V = 1000, kMask = 3;
  auto ids = at::randint(10, V, {B, T}, at::kLong);
  auto special = at::zeros({B, T}, at::kBool);
  special.select(1, 0).fill_(true);
  special.select(1, T - 1).fill_(true);
  special.narrow(0, 0, 8).narrow(1, T / 2, T / 2).fill_(true);  // padding of some rows
  std::mt19937_64 rng(11);
  const auto b = mask_tokens(ids, special, kMask, V, 0.15, rng);
  auto sel = b.labels.ne(-100);
  const int64_t eligible = (~special).sum().item<int64_t>(), selected = sel.sum().item<int64_t>();
  EXPECT_EQ((sel & special).sum().item<int64_t>(), 0) << "a special or padding position was selected";
  expect_share(static_cast<double>(selected) / eligible, 0.15, eligible, "selected");
  // Labels are the original ids at the selected positions; the other positions are unchanged.
  EXPECT_TRUE(b.labels.masked_select(sel).equal(ids.masked_select(sel)));
  EXPECT_TRUE(b.inputs.masked_select(~sel).equal(ids.masked_select(~sel)));
  auto in = b.inputs.masked_select(sel), orig = ids.masked_select(sel);
  const int64_t masked = in.eq(kMask).sum().item<int64_t>();
  const int64_t kept = in.eq(orig).sum().item<int64_t>();
  const int64_t random = selected - masked - kept;
  // A random draw hits the mask id or the original id with probability 1/V each: within the bounds.
  expect_share(static_cast<double>(masked) / selected, 0.8, selected, "<mask>");
  expect_share(static_cast<double>(kept) / selected, 0.1, selected, "kept");
  expect_share(static_cast<double>(random) / selected, 0.1, selected, "random");
  auto replaced = in.masked_select(in.ne(kMask) & in.ne(orig));
  EXPECT_GE(replaced.min().item<int64_t>(), 0);
  EXPECT_LT(replaced.max().item<int64_t>(), V);
  // Uniform over [0, V): ids below 10 never occur in `ids`, so those come from the random draw only.
  EXPECT_GT(replaced.lt(500).sum().item<int64_t>(), 0);
  EXPECT_GT(replaced.ge(500).sum().item<int64_t>(), 0);
  // The same seed gives the same batch; another seed another.
  std::mt19937_64 again(11), other(12);
  EXPECT_TRUE(mask_tokens(ids, special, kMask, V, 0.15, again).inputs.equal(b.inputs));
  EXPECT_FALSE(mask_tokens(ids, special, kMask, V, 0.15, other).inputs.equal(b.inputs));
}

namespace {
std::string make_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lopa_mlm_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}
// bench/configs/<name>-tiny.json at `vocab` entries.
std::string tiny_config(const std::string& dir, const std::string& name, int64_t vocab) {
  std::ifstream in(std::string(LOPA_SOURCE_DIR) + "/bench/configs/" + name + "-tiny.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["vocab_size"] = vocab;
  if (cfg.contains("max_position_embeddings")) cfg["max_position_embeddings"] = 130;
  const auto path = dir + "/" + name + ".json";
  std::ofstream(path) << cfg.dump(2);
  return path;
}
// The first n sentences of SST-2's train split, one per line.
std::string sst2_text(const std::string& dir, int n) {
  std::ifstream in(std::string(LOPA_SHARED_DIR) + "/data/glue/SST-2/train.tsv");
  std::ofstream out(dir + "/sst2.txt");
  std::string line;
  std::getline(in, line);  // header
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line.substr(0, line.find('\t')) << "\n";
  return dir + "/sst2.txt";
}
}  // namespace

TEST(MlmPretrain, TinyRobertaLossFalls) {
  const auto dir = make_dir("train");
  MlmPretrainConfig c;
  c.model_config = tiny_config(dir, "roberta", 50265);
  c.tokenizer_dir = std::string(LOPA_SHARED_DIR) + "/tokenizers/roberta";
  c.steps = 40;
  c.batch_size = 16;
  c.seq_len = 32;
  c.warmup_steps = 4;
  c.lr = 3e-3;
  c.log_every = 5;
  std::ostringstream progress;
  const auto out = dir + "/model";
  const auto r = pretrain_mlm(c, text_documents(sst2_text(dir, 400)), out, progress);
  // A random-init head starts near ln V (uniform over the vocabulary).
  EXPECT_NEAR(r.first_loss, std::log(50265.0), 1.5) << progress.str();
  EXPECT_LT(r.final_loss, r.first_loss - 2.0) << progress.str();
  EXPECT_TRUE(std::isfinite(r.val_loss));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "pretrain.json"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  auto rec = nlohmann::json::parse(std::ifstream(out + "/pretrain.json"));
  EXPECT_EQ(rec["objective"], "mlm");
  EXPECT_EQ(rec["train"]["loss"].size(), 8u);
  // The directory is complete: a second run into it is refused rather than overwriting it.
  EXPECT_THROW(pretrain_mlm(c, {"a b", "c d"}, out, progress), Error);
  fs::remove_all(dir);
}

TEST(MlmPretrain, BadInputIsOneError) {
  const auto dir = make_dir("bad");
  MlmPretrainConfig c;
  c.model_config = tiny_config(dir, "gpt2", 50265);  // a decoder cannot take the mlm objective
  c.tokenizer_dir = std::string(LOPA_SHARED_DIR) + "/tokenizers/roberta";
  c.steps = 2;
  std::ostringstream progress;
  try {
    pretrain_mlm(c, {"a b", "c d"}, dir + "/model", progress);
    FAIL() << "a decoder was pretrained with the mlm objective";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not a masked LM"), std::string::npos) << e.what();
  }
  EXPECT_THROW(text_documents(dir + "/missing.txt"), Error);
  EXPECT_THROW(glue_train_documents(dir), Error);
  fs::remove_all(dir);
}
