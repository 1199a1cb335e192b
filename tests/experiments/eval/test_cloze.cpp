// GLUE as cloze on a masked-LM FM: the official templates and label words, the loss (full-vocabulary
// cross-entropy at <mask>) and the prediction (argmax over the label words) against a hand computation
// from the model's own forward on token ids, the soft prompt right after <s> (equal to real tokens
// written there), the errors of a model in the wrong role, and lopa train with every method on SST-2.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "experiments/eval/cloze.h"
#include "experiments/tasks/cloze_templates.h"
#include "experiments/tasks/glue.h"
#include "lopa/method.h"
#include "runtime/base/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/init_model.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace lopa;

namespace {

const std::string kShared = LOPA_SHARED_DIR;

// A random-init RobertaForMaskedLM (bench/configs/roberta-tiny.json at RoBERTa's real vocabulary) with
// the shared RoBERTa tokenizer, made once per process.
std::string tiny_roberta() {
  static std::string dir;
  if (!dir.empty()) return dir;
  const auto root = fs::temp_directory_path() / ("lopa_cloze_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  std::ifstream in(std::string(LOPA_SOURCE_DIR) + "/bench/configs/roberta-tiny.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["vocab_size"] = 50265;
  cfg["max_position_embeddings"] = 130;
  std::ofstream((root / "config.json").string()) << cfg.dump(2);
  init_model((root / "config.json").string(), (root / "model").string(), kShared + "/tokenizers/roberta", 3);
  return dir = (root / "model").string();
}

Example glue_example(const std::string& id, std::map<std::string, std::string> fields, int64_t label) {
  Example e;
  e.id = id;
  e.fields = std::move(fields);
  e.label_index = label;
  e.label = std::to_string(label);  // SST-2's labels are "0" / "1"
  return e;
}

// No trainable part, or a fixed soft prompt: the FM as it is.
class FixedPrompt : public Method {
 public:
  explicit FixedPrompt(at::Tensor z = {}) : z_(std::move(z)) {}
  std::string name() const override { return "fixed"; }
  NamedTensors parameters() override { return {}; }
  int64_t num_trainable_parameters() const override { return 0; }
  int64_t prompt_length() const override { return z_.defined() ? z_.size(1) : 0; }
  at::Tensor soft_prompt(const at::Tensor&, int64_t b) override {
    return z_.defined() ? z_.expand({b, z_.size(1), z_.size(2)}) : at::Tensor();
  }
  void save(const std::string&) const override {}
  void load(const std::string&) override {}

 private:
  at::Tensor z_;
};

}  // namespace

TEST(ClozeTemplates, OfficialTextsAndLabelWords) {
  const auto sst = glue_example("0", {{"sentence", "a fine film"}}, 1);
  EXPECT_EQ(render_cloze("sst2", sst, "", "<mask>"), "a fine film . It was <mask> .");
  const auto qqp = glue_example("1", {{"question1", "Why?"}, {"question2", "How?"}}, 0);
  EXPECT_EQ(render_cloze("qqp", qqp, "", "<mask>"), "Why? <mask> , How?");
  const auto rte = glue_example("2", {{"sentence1", "A."}, {"sentence2", "B."}}, 0);
  EXPECT_EQ(render_cloze("rte", rte, "", "[MASK]"), "A. ? [MASK] , B.");
  // Label words in TaskInfo::labels order (sst2 0|1, rte entailment|not_entailment, mnli e|n|c).
  EXPECT_EQ(default_cloze_words("sst2"), (std::vector<std::string>{"terrible", "great"}));
  EXPECT_EQ(default_cloze_words("rte"), (std::vector<std::string>{"Yes", "No"}));
  EXPECT_EQ(default_cloze_words("mrpc"), (std::vector<std::string>{"No", "Yes"}));
  EXPECT_EQ(default_cloze_words("mnli"), (std::vector<std::string>{"Yes", "Maybe", "No"}));
  EXPECT_THROW(default_cloze_template("mbpp"), Error);
  EXPECT_THROW(render_cloze("sst2", sst, "{sentence} no mask", "<mask>"), Error);
}

TEST(ClozeItems, MaskPositionAndSingleTokenWords) {
  const auto tok = Tokenizer::from_dir(tiny_roberta());
  const auto sst = glue_example("7", {{"sentence", "a fine film"}}, 1);
  auto items = make_cloze_items("sst2", {sst}, {}, tok, nullptr, 64, 64);
  ASSERT_EQ(items.size(), 1u);
  const auto& it = items[0];
  EXPECT_EQ(it.prompt, tok.encode("a fine film . It was <mask> .", true));
  EXPECT_EQ(it.prompt.front(), 0);  // <s>
  EXPECT_EQ(it.prompt.back(), 2);   // </s>
  ASSERT_GE(it.mask_pos, 0);
  EXPECT_EQ(it.prompt[it.mask_pos], *tok.mask_id());
  // " terrible" / " great": one token each, the Ġ forms.
  ASSERT_EQ(it.targets.size(), 2u);
  EXPECT_EQ(it.targets[0], (std::vector<int64_t>{*tok.token_to_id("\xC4\xA0terrible")}));
  EXPECT_EQ(it.targets[1], (std::vector<int64_t>{*tok.token_to_id("\xC4\xA0great")}));
  // Truncated past the mask: the mask goes before the kept </s>, as the official code does.
  auto cut = make_cloze_items("sst2", {sst}, {}, tok, nullptr, 4, 64);
  EXPECT_EQ(cut[0].prompt.size(), 4u);
  EXPECT_EQ(cut[0].mask_pos, 2);
  EXPECT_EQ(cut[0].prompt[2], *tok.mask_id());
  EXPECT_EQ(cut[0].prompt[3], 2);
  // A label word of several tokens is refused.
  TemplateConfig multi;
  multi.verbalizers = " unbelievablyawful| great";
  EXPECT_THROW(make_cloze_items("sst2", {sst}, multi, tok, nullptr, 64, 64), Error);
}

// Loss and prediction against the model's own forward on token ids (positions from the ids, as
// transformers computes them), log-softmax written out by hand in double precision.
TEST(ClozeLoss, MatchesHandComputation) {
  auto pg = ProcessGroup::single();
  auto fm = CausalLM::load(tiny_roberta(), pg);
  ASSERT_TRUE(is_masked_lm(fm));
  const auto tok = Tokenizer::from_dir(tiny_roberta());
  std::vector<Example> ex = {glue_example("0", {{"sentence", "a fine film"}}, 1),
                             glue_example("1", {{"sentence", "dull , long and very badly acted"}}, 0),
                             glue_example("2", {{"sentence", "ok"}}, 0)};
  auto items = make_cloze_items("sst2", ex, {}, tok, nullptr, 64, 64);
  auto batch = cloze_batch(items, {0, 1, 2}, *tok.pad_id());
  EXPECT_EQ(batch.num_target_tokens, 3);
  FixedPrompt none;
  at::Tensor labels;
  at::NoGradGuard g;
  auto hidden = cloze_forward(none, fm, batch, {}, labels);
  const double loss = cloze_loss(fm, hidden, labels).item<double>();

  double want = 0;
  std::vector<int64_t> want_pred;
  for (size_t r = 0; r < items.size(); ++r) {
    const auto& it = items[r];
    auto ids = at::tensor(it.prompt, at::kLong).unsqueeze(0);
    auto h = fm.forward(fm.embed(ids), at::Tensor(), nullptr, fm.architecture().position_ids(ids));
    auto logit = fm.lm_logits(h[0][it.mask_pos]).to(at::kDouble);
    const auto* L = logit.data_ptr<double>();
    double mx = -INFINITY, z = 0;
    for (int64_t v = 0; v < logit.numel(); ++v) mx = std::max(mx, L[v]);
    for (int64_t v = 0; v < logit.numel(); ++v) z += std::exp(L[v] - mx);
    want += (mx + std::log(z) - L[it.targets[it.gold][0]]) / 3.0;
    want_pred.push_back(L[it.targets[1][0]] > L[it.targets[0][0]] ? 1 : 0);
  }
  EXPECT_NEAR(loss, want, 1e-5);

  auto res = evaluate_cloze("sst2", ex, items, none, fm, {}, 2, *tok.pad_id());
  ASSERT_EQ(res.predictions.size(), 3u);
  int64_t correct = 0;
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(res.predictions[r].second, want_pred[r] ? "1" : "0") << r;
    correct += want_pred[r] == ex[r].label_index;
  }
  EXPECT_NEAR(res.metrics.at("accuracy"), correct / 3.0, 1e-12);
  EXPECT_NEAR(res.metrics.at("loss"), want, 1e-5);
}

// A soft prompt made of the embeddings of real tokens t1 t2 gives at <mask> what the ids
// <s> t1 t2 text... give: it sits right after <s> and the positions run on through it.
TEST(ClozeLoss, SoftPromptGoesAfterBos) {
  auto pg = ProcessGroup::single();
  auto fm = CausalLM::load(tiny_roberta(), pg);
  const auto tok = Tokenizer::from_dir(tiny_roberta());
  std::vector<Example> ex = {glue_example("0", {{"sentence", "a fine film"}}, 1),
                             glue_example("1", {{"sentence", "dull and long"}}, 0)};
  auto items = make_cloze_items("sst2", ex, {}, tok, nullptr, 64, 64);
  const std::vector<int64_t> prompt_ids = {1000, 2000};
  at::NoGradGuard g;
  auto z = fm.embed(at::tensor(prompt_ids, at::kLong).unsqueeze(0));  // 1×2×d
  FixedPrompt fixed(z);
  at::Tensor labels;
  auto hidden = cloze_forward(fixed, fm, cloze_batch(items, {0, 1}, *tok.pad_id()), {}, labels);
  for (int64_t r = 0; r < 2; ++r) {
    auto ids = items[r].prompt;
    ids.insert(ids.begin() + 1, prompt_ids.begin(), prompt_ids.end());
    auto t = at::tensor(ids, at::kLong).unsqueeze(0);
    auto h = fm.forward(fm.embed(t), at::Tensor(), nullptr, fm.architecture().position_ids(t));
    const int64_t at_mask = items[r].mask_pos + 2;
    EXPECT_EQ(labels[r][at_mask].item<int64_t>(), items[r].targets[items[r].gold][0]);
    EXPECT_LT((hidden[r][at_mask] - h[0][at_mask]).abs().max().item<double>(), 1e-5) << r;
  }
}

TEST(ClozeRoles, WrongModelForTheRoleIsOneError) {
  auto pg = ProcessGroup::single();
  auto mlm = CausalLM::load(tiny_roberta(), pg);
  try {
    check_fm_role(mlm, "M", "mbpp", "");
    FAIL() << "an encoder as the FM of a code task was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be the FM of mbpp"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_fm_role(mlm, "M", "sst2", ""));
  auto dec = CausalLM::load(kShared + "/models/stories260K", pg);
  EXPECT_FALSE(is_masked_lm(dec));
  try {
    check_fm_role(dec, "D", "sst2", "{sentence} . It was <mask> .");
    FAIL() << "a decoder with a masked-LM template was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("masked-LM template"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_fm_role(dec, "D", "sst2", ""));
}

namespace {
std::vector<double> train_losses(const std::string& run_dir) {
  int rc = 0;
  auto out = test::capture("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); "
                           "[print(repr(float(x))) for x in f['train/loss'][:]]\" " + run_dir + "/metrics.h5",
                           &rc);
  std::vector<double> v;
  std::istringstream in(out);
  double x;
  while (in >> x) v.push_back(x);
  return v;
}
}  // namespace

class ClozeCell : public ::testing::TestWithParam<std::string> {};

// SST-2 as cloze on the random-init RoBERTa: every method trains (16 steps of 8), the loss falls, and
// lopa eval scores the dev examples.
TEST_P(ClozeCell, TrainsWithFallingLoss) {
  const std::string method = GetParam();
  const std::string out = (fs::temp_directory_path() / ("lopa_cloze_run_" + method + "_" + std::to_string(getpid()))).string();
  fs::remove_all(out);
  const std::string lr = method == "fft" ? "0.001" : method == "lora" ? "0.01" : "0.03";
  const std::string cmd = std::string(LOPA_BIN) + " train --model " + tiny_roberta() + " --task sst2 --data-dir " +
                          kShared + "/data --method " + method +
                          " --num-virtual-tokens 4 --rank 2 --batch-size 8 --max-length 48 --max-train-examples 32 "
                          "--max-eval-examples 16 --eval-batch-size 16 --max-steps 16 --lr " + lr +
                          " --lora-targets query,key,value --encoder-pooling first --device cpu --out " + out +
                          " > " + out + ".log 2>&1";
  int rc = 0;
  test::capture(cmd, &rc);
  ASSERT_EQ(rc, 0) << method << ": see " << out << ".log";
  const auto l = train_losses(out);
  ASSERT_EQ(l.size(), 16u);
  const double first = (l[0] + l[1] + l[2] + l[3]) / 4, last = (l[12] + l[13] + l[14] + l[15]) / 4;
  EXPECT_LT(last, first) << method << ": training loss did not fall (" << first << " -> " << last << ")";
  EXPECT_LT(first, std::log(50265.0) + 2) << "the first loss is not a full-vocabulary cross-entropy";
  auto eval = test::capture(std::string(LOPA_BIN) + " eval --run " + out + " --device cpu 2>/dev/null", &rc);
  ASSERT_EQ(rc, 0) << eval;
  auto j = nlohmann::json::parse(eval);
  EXPECT_EQ(j["examples"].get<int64_t>(), 16);
  EXPECT_GE(j["accuracy"].get<double>(), 0.0);
  fs::remove_all(out);
  fs::remove(out + ".log");
}

INSTANTIATE_TEST_SUITE_P(Methods, ClozeCell, ::testing::Values("pt", "idpg", "lopa", "lora", "prefix", "fft"));
