// LoPA / IDPG with a separate encoder of an encoder architecture (issue 16's encoder role): a
// RoBERTa-architecture encoder (random-init, roberta-base's real tokenizer) on a decoder FM, and a
// CodeSage-architecture encoder on a code task, train end to end through `lopa train`; the encoder
// reads the prompt text with its own tokenizer and special tokens, truncated from the left as the
// official code does (checked against the tokenizer's own ids).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "experiments/eval/batching.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using lopa::test::capture;

namespace {

const std::string kShared = LOPA_SHARED_DIR;
const std::string kLopa = std::string(LOPA_BIN) + " ";

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lopa_enc_train_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

// A random-init checkpoint of bench/configs/<family>-tiny.json resized to a real tokenizer's vocabulary.
std::string encoder_model(const std::string& family, const std::string& tokenizer, int64_t vocab, int64_t positions) {
  const auto dir = tmpdir(family);
  std::ifstream in(std::string(LOPA_SOURCE_DIR) + "/bench/configs/" + family + "-tiny.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["vocab_size"] = vocab;
  cfg["max_position_embeddings"] = positions;
  if (family == "codesage") cfg["pad_token_id"] = 0;
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  int rc = 0;
  auto log = capture(kLopa + "init-model --config " + dir + "/config.json --out " + dir + "/m --seed 4 2>&1", &rc);
  if (rc != 0) throw std::runtime_error("init-model failed: " + log);
  for (const auto& f : fs::directory_iterator(kShared + "/tokenizers/" + tokenizer)) {
    const auto name = f.path().filename().string();
    if (name.rfind("samples", 0) != 0) fs::copy_file(f.path(), dir + "/m/" + name, fs::copy_options::overwrite_existing);
  }
  return dir + "/m";
}

std::vector<double> losses(const std::string& run_dir) {
  int rc = 0;
  auto out = capture("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); "
                     "[print(repr(float(x))) for x in f['train/loss'][:]]\" " + run_dir + "/metrics.h5",
                     &rc);
  std::vector<double> v;
  std::istringstream s(out);
  for (double x; s >> x;) v.push_back(x);
  return v;
}

double mean(const std::vector<double>& v, size_t a, size_t b) {
  double s = 0;
  for (size_t i = a; i < b; ++i) s += v[i];
  return s / static_cast<double>(b - a);
}

}  // namespace

TEST(EncoderInput, SpecialTokensKeptAndTextCutFromTheLeft) {
  const auto tok = lopa::Tokenizer::from_dir(kShared + "/tokenizers/roberta");
  const std::string text = "one two three four five six seven eight nine ten eleven twelve";
  const auto full = tok.encode(text, true), content = tok.encode(text, false);
  ASSERT_EQ(full.size(), content.size() + 2);  // <s> … </s>
  EXPECT_EQ(lopa::encoder_input_ids(tok, text, 100), full);
  const auto cut = lopa::encoder_input_ids(tok, text, 6);
  ASSERT_EQ(cut.size(), 6u);
  EXPECT_EQ(cut.front(), 0);  // <s>
  EXPECT_EQ(cut.back(), 2);   // </s>
  // The last four content ids, as tokenizer(text, truncation_side="left", max_length=6) keeps them.
  EXPECT_EQ(std::vector<int64_t>(cut.begin() + 1, cut.end() - 1), std::vector<int64_t>(content.end() - 4, content.end()));
  EXPECT_THROW(lopa::encoder_input_ids(tok, text, 2), std::exception);
}

TEST(EncoderRole, RobertaEncoderOnADecoderFM) {
  const auto enc = encoder_model("roberta", "roberta", 50265, 130);
  for (const std::string method : {"lopa", "idpg"}) {
    const auto out = tmpdir("run_" + method);
    int rc = 0;
    auto log = capture(kLopa + "train --model " + kShared + "/models/stories260K --encoder " + enc +
                           " --task story-names --method " + method +
                           " --num-virtual-tokens 4 --rank 2 --batch-size 8 --max-length 64 --encoder-max-length 128"
                           " --max-train-examples 64 --max-eval-examples 16 --eval-batch-size 8 --max-steps 24"
                           " --lr 0.03 --device cpu --out " + out + "/r 2>&1",
                       &rc);
    ASSERT_EQ(rc, 0) << log;
    // The family's pooling (RoBERTa: the first token, <s>) is what ran, and the log says so.
    EXPECT_NE(log.find("encoder " + enc + " (roberta, pooling first, frozen)"), std::string::npos) << log;
    const auto l = losses(out + "/r");
    ASSERT_EQ(l.size(), 24u);
    EXPECT_LT(mean(l, 18, 24), mean(l, 0, 6)) << method;
  }
}

TEST(EncoderRole, CodeSageEncoderOnACodeTask) {
  const auto enc = encoder_model("codesage", "codegen", 50295, 64);
  const auto out = tmpdir("run_codesage");
  int rc = 0;
  auto log = capture(kLopa + "train --model " + kShared + "/models/stories260K --data-dir " + kShared +
                         "/data --encoder " + enc + " --task mbpp --method lopa --num-virtual-tokens 4 --rank 2"
                         " --batch-size 4 --max-length 192 --encoder-max-length 64 --max-train-examples 16"
                         " --max-eval-examples 2 --max-new-tokens 8 --max-steps 6 --lr 0.03 --eval-batch-size 2"
                         " --device cpu --out " + out + "/r 2>&1",
                     &rc);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_NE(log.find("(codesage, pooling mean, frozen)"), std::string::npos) << log;
  EXPECT_NE(log.find("pass_at_1="), std::string::npos) << log;
  // Longer than the encoder's 64 positions without left truncation: the run would have failed.
  EXPECT_EQ(losses(out + "/r").size(), 6u);
}
