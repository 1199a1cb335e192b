// LoPA / IDPG with a separate encoder of an encoder architecture (issue 16's encoder role): a
// RoBERTa-architecture encoder (random-init, roberta-base's real tokenizer) on a decoder FM, and a
// CodeSage-architecture encoder on a code task, train end to end through `lopa train`; the encoder
// reads the prompt text with its own tokenizer and special tokens, truncated from the left as the
// official code does (checked against the tokenizer's own ids).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
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

namespace {

// Every tensor of a safetensors file, read independently of lopa (header JSON + raw little-endian
// data), as "name sum-of-abs max-abs-difference-from-other" lines when `other` is given.
std::map<std::string, double> max_abs_diff(const std::string& a, const std::string& b) {
  int rc = 0;
  const std::string py =
      "import json,struct,sys,numpy as np\n"
      "def rd(p):\n"
      "  d=open(p,'rb').read(); n=struct.unpack('<Q',d[:8])[0]; h=json.loads(d[8:8+n]); out={}\n"
      "  for k,v in h.items():\n"
      "    if k=='__metadata__': continue\n"
      "    s,e=v['data_offsets']; out[k]=np.frombuffer(d[8+n+s:8+n+e],dtype=np.float32)\n"
      "  return out\n"
      "A=rd(sys.argv[1]); B=rd(sys.argv[2])\n"
      "for k in sorted(A):\n"
      "  print(k, float(np.abs(A[k]-B[k]).max()) if k in B and A[k].shape==B[k].shape else -1.0)\n";
  std::ofstream(fs::temp_directory_path() / "lopa_st_diff.py") << py;
  auto out = capture("/usr/bin/python3 " + (fs::temp_directory_path() / "lopa_st_diff.py").string() + " " + a + " " + b, &rc);
  std::map<std::string, double> m;
  std::istringstream s(out);
  for (std::string k; s >> k;) s >> m[k];
  return m;
}

std::string h5_attr(const std::string& run_dir, const std::string& attr) {
  int rc = 0;
  auto v = capture("/usr/bin/python3 -c \"import h5py,sys; print(h5py.File(sys.argv[1],'r').attrs[sys.argv[2]])\" " +
                       run_dir + "/metrics.h5 " + attr,
                   &rc);
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

}  // namespace

// train-encoder = true: the encoder's weights move at encoder-lr (not at all at encoder-lr 0, the
// control), the trained encoder is saved with the adapter as an HF checkpoint, and lopa eval scores the
// adapter with it (the same accuracy the run selected it by); without it, lopa eval says what is missing.
TEST(EncoderRole, TrainEncoderMovesTheEncoderAndTravelsWithTheAdapter) {
  const auto enc = encoder_model("roberta", "roberta", 50265, 130);
  const std::string common = "train --model " + kShared + "/models/stories260K --encoder " + enc +
                             " --task story-names --method lopa --num-virtual-tokens 4 --rank 2 --batch-size 8"
                             " --max-length 64 --max-train-examples 64 --max-eval-examples 16 --eval-batch-size 8"
                             " --max-steps 12 --lr 0.03 --eval-split dev --device cpu --train-encoder true ";
  std::map<std::string, std::map<std::string, double>> diff;
  for (const std::string elr : {"0", "0.001"}) {
    const auto out = tmpdir("train_enc_" + elr) + "/r";
    int rc = 0;
    auto log = capture(kLopa + common + "--encoder-lr " + elr + " --out " + out + " 2>&1", &rc);
    ASSERT_EQ(rc, 0) << log;
    EXPECT_NE(log.find("(roberta, pooling first, trained at encoder-lr " + std::string(elr == "0" ? "0" : "0.001")),
              std::string::npos)
        << log;
    ASSERT_TRUE(fs::exists(out + "/adapter/encoder/config.json"));
    ASSERT_TRUE(fs::exists(out + "/adapter/encoder/tokenizer.json"));  // the encoder's own tokenizer travels too
    EXPECT_EQ(h5_attr(out, "encoder_trainable"), "1");
    diff[elr] = max_abs_diff(out + "/adapter/encoder/model.safetensors", enc + "/model.safetensors");

    // lopa eval reads adapter/encoder: the selected step's dev accuracy again.
    auto ev = capture(kLopa + "eval --run " + out + " --split dev --device cpu 2>&1", &rc);
    ASSERT_EQ(rc, 0) << ev;
    // The dev loss the run logged at its selected step (a continuous value: another encoder gives another).
    auto logged = capture("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); "
                          "b=int(f.attrs['best_step']); s=list(f['eval/dev/step'][:]); "
                          "print(repr(float(f['eval/dev/loss'][s.index(b)])))\" " + out + "/metrics.h5",
                          &rc);
    ASSERT_EQ(rc, 0) << logged;
    const auto j = nlohmann::json::parse(ev.substr(ev.find('{')));
    EXPECT_NEAR(j.at("loss").get<double>(), std::stod(logged), 1e-6) << ev;
    EXPECT_EQ(j.at("accuracy").get<double>(), std::stod(h5_attr(out, "best_metric")));
    if (elr != "0") {
      fs::remove_all(out + "/adapter/encoder");
      ev = capture(kLopa + "eval --run " + out + " --split dev --device cpu 2>&1", &rc);
      EXPECT_NE(rc, 0);
      EXPECT_NE(ev.find(out + ": the run trained its encoder (train-encoder = true) but adapter/encoder/config.json is "
                              "missing"),
                std::string::npos)
          << ev;
    }
  }
  const std::string q = "roberta.encoder.layer.0.attention.self.query.weight";
  ASSERT_TRUE(diff["0"].count(q)) << "tensor names differ from the checkpoint's";
  for (const auto& [name, d] : diff["0"]) EXPECT_EQ(d, 0.0) << name << " moved at encoder-lr 0";
  EXPECT_GT(diff["0.001"][q], 1e-5);
  EXPECT_GT(diff["0.001"]["roberta.embeddings.word_embeddings.weight"], 1e-5);
}

TEST(EncoderRole, TrainEncoderNeedsAnEncoder) {
  int rc = 0;
  auto log = capture(kLopa + "train --model " + kShared + "/models/stories260K --task story-names --method lopa"
                             " --train-encoder true --max-steps 1 --device cpu --out " + tmpdir("noenc") + "/r 2>&1",
                     &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(log.find("--train-encoder: needs --encoder DIR (without one the FM embeds the instances, and the FM "
                     "stays frozen)"),
            std::string::npos)
      << log;
}
