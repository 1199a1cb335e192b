// Golden-loss parity with the official LoPA code (issue 17): `lopa train --save-initial true` on
// stories260K writes its initial trainable parameters and each step's batch; bench/official_ref.py
// replays the same 20 AdamW steps with the official generators (LatentPromptAttentionGenerator and
// its lopa_type combinations, IDPGSoftPromptGenerator, PEFT's prompt embedding and LoRA) in PyTorch;
// with dropout off the per-step training losses agree to 1e-5 relative. A wrong combination in the
// reference must disagree (the comparison can fail), and lopa's initial values must follow the
// official initialisation. Skipped with a message when /usr/bin/python3 lacks torch or h5py.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::string kModel = std::string(LOPA_SHARED_DIR) + "/models/stories260K";
const std::string kRef = std::string(LOPA_SOURCE_DIR) + "/bench/official_ref.py";
constexpr int kSteps = 20;
constexpr double kTolerance = 1e-5;

std::string capture(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  const int status = p ? pclose(p) : -1;
  if (rc) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

bool python_ready(std::string* why) {
  int rc = 0;
  auto out = capture("/usr/bin/python3 -c 'import torch, h5py' 2>&1", &rc);
  if (rc != 0) *why = "/usr/bin/python3 cannot import torch and h5py (" + out.substr(0, 200) + ")";
  return rc == 0;
}

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lopa_parity_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  return d.string();
}

// /train/loss of lopa's run log, read by h5py (an independent reader).
std::vector<double> lopa_losses(const std::string& run) {
  auto out = capture("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); "
                     "[print(repr(float(x))) for x in f['train/loss'][:]]\" " + run + "/metrics.h5");
  std::vector<double> v;
  std::istringstream in(out);
  for (double x; in >> x;) v.push_back(x);
  return v;
}

int64_t lopa_trainable(const std::string& run) {
  auto out = capture("/usr/bin/python3 -c \"import h5py,sys; print(int(h5py.File(sys.argv[1],'r').attrs['trainable_params']))\" " +
                     run + "/metrics.h5");
  return std::atoll(out.c_str());
}

// Trains 20 steps with lopa; dropout off, the official optimizer settings unless `extra` says otherwise.
std::string train(const std::string& name, const std::string& method, const std::string& extra) {
  const auto out = tmpdir(name);
  const std::string cmd = std::string(LOPA_BIN) + " train --model " + kModel + " --task story-names --method " + method +
                          " --num-virtual-tokens 4 --rank 2 --batch-size 4 --max-length 64 --max-train-examples 96"
                          " --max-eval-examples 8 --eval-batch-size 8 --max-steps " + std::to_string(kSteps) +
                          " --prompt-dropout 0 --lora-dropout 0 --encoder-pooling last --save-initial true --device cpu"
                          " --out " + out + " " +
                          extra + " > " + out + ".log 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 0) << cmd;
  return out;
}

nlohmann::json reference(const std::string& run, const std::string& extra = "") {
  int rc = 0;
  auto out = capture("/usr/bin/python3 " + kRef + " --run " + run + " --steps " + std::to_string(kSteps) + " " + extra +
                         " 2>&1",
                     &rc);
  EXPECT_EQ(rc, 0) << out;
  auto j = nlohmann::json::parse(out.substr(out.find('{')), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << out;
  return j;
}

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]) / std::max(std::fabs(b[i]), 1e-12));
  return worst;
}

struct Case {
  std::string name, method, extra;
};

// The official trainer's optimizer: AdamW (weight decay 0.01, torch's default), constant rate, no clipping.
const std::string kOfficial = "--weight-decay 0.01 --schedule constant --warmup-steps 0 --max-grad-norm 0";

// Learning rates: the official 1e-3, and 1e-4 where the method's unbounded instance tokens (LoPA concat,
// IDPG) amplify float32 rounding chaotically at 1e-3 (measured: the step-1 difference of ~6e-8 grows
// about tenfold every 2-3 steps, to 5e-3 and 1e-4 by step 20; at 1e-4 it stays below 1e-6). Every case
// still moves its losses by far more than the tolerance (checked against the frozen replay).
std::vector<Case> cases() {
  return {{"lopa_mul", "lopa", kOfficial + " --lr 0.001 --lopa-combine mul"},
          {"lopa_add", "lopa", kOfficial + " --lr 0.001 --lopa-combine add"},
          {"lopa_max", "lopa", kOfficial + " --lr 0.001 --lopa-combine max"},
          {"lopa_concat", "lopa", kOfficial + " --lr 0.0001 --lopa-combine concat"},
          {"idpg", "idpg", kOfficial + " --lr 0.0001"},
          {"pt", "pt", kOfficial + " --lr 0.001"},
          {"lora", "lora", kOfficial + " --lr 0.001 --lora-targets q,k,v --lora-alpha 32"},
          // lopa's own trainer settings: linear schedule after warmup, clipping (exercised: the norms exceed 0.5).
          {"lopa_trainer_defaults", "lopa", "--lr 0.001 --schedule linear --warmup-steps 3 --max-grad-norm 0.5"}};
}

}  // namespace

class OfficialParity : public ::testing::TestWithParam<Case> {};

TEST_P(OfficialParity, LossesMatchTheOfficialCodeStepForStep) {
  std::string why;
  if (!python_ready(&why)) GTEST_SKIP() << why;
  const Case c = GetParam();
  const auto run = train(c.name, c.method, c.extra);
  for (auto f : {"initial/items.jsonl", "initial/batches.jsonl"})
    ASSERT_TRUE(fs::exists(fs::path(run) / f)) << f;
  const auto mine = lopa_losses(run);
  ASSERT_EQ(mine.size(), size_t(kSteps));
  const auto ref = reference(run);
  const auto theirs = ref.at("losses").get<std::vector<double>>();
  ASSERT_EQ(theirs.size(), size_t(kSteps));
  for (int i = 0; i < kSteps; ++i)
    EXPECT_NEAR(mine[i], theirs[i], kTolerance * std::fabs(theirs[i])) << c.name << " step " << i + 1;
  std::cout << "[parity] " << c.name << ": max relative difference " << max_rel_diff(mine, theirs) << " over "
            << kSteps << " steps; the updates moved the losses by up to " << ref.at("frozen_max_rel").get<double>()
            << " relative" << std::endl;
  // The updates must move the losses far beyond the tolerance, or agreement would say little about them.
  EXPECT_GT(ref.at("frozen_max_rel").get<double>(), 100 * kTolerance) << c.name;
  EXPECT_EQ(ref.at("trainable_parameters").get<int64_t>(), lopa_trainable(run)) << c.name;
  for (auto& [name, check] : ref.at("init").items())
    EXPECT_TRUE(check.at("ok").get<bool>()) << c.name << ": initial " << name << " breaks the official rule "
                                             << check.dump();
  fs::remove_all(run);
  fs::remove(run + ".log");
}

INSTANTIATE_TEST_SUITE_P(Methods, OfficialParity, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// The comparison can fail: the mul run replayed with another official combination disagrees at once.
TEST(OfficialParityControl, AWrongCombinationDisagrees) {
  std::string why;
  if (!python_ready(&why)) GTEST_SKIP() << why;
  const auto run = train("control", "lopa", kOfficial + " --lr 0.001 --lopa-combine mul");
  const auto mine = lopa_losses(run);
  for (const char* other : {"lopa-add", "lopa-max"}) {
    const auto theirs = reference(run, std::string("--lopa-type ") + other).at("losses").get<std::vector<double>>();
    ASSERT_EQ(theirs.size(), mine.size());
    EXPECT_GT(max_rel_diff(mine, theirs), 1e-3) << other;
  }
  fs::remove_all(run);
  fs::remove(run + ".log");
}
