// `lopa train` / `lopa eval` end to end on the real stories260K model and the in-domain story-names
// task: each method writes a complete run directory with a falling loss; a run stopped by SIGUSR1 and
// restarted gives the same loss curve as an uninterrupted one; tp = 2 under mpirun equals tp = 1.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "runtime/io/safetensors.h"

namespace fs = std::filesystem;

namespace {
const std::string kModel = std::string(LOPA_SHARED_DIR) + "/models/stories260K";

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lopa_train_test_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  return d.string();
}

int run(const std::string& cmd) {
  int rc = std::system((cmd + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p) pclose(p);
  return out;
}

// /train/loss of a run (h5py, an independent reader), one value per line.
std::vector<double> losses(const std::string& run_dir) {
  auto out = capture("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); "
                     "[print(repr(float(x))) for x in f['train/loss'][:]]\" " + run_dir + "/metrics.h5");
  std::vector<double> v;
  std::istringstream in(out);
  double x;
  while (in >> x) v.push_back(x);
  return v;
}

std::string h5attr(const std::string& run_dir, const std::string& attr) {
  auto out = capture("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); v=f.attrs[sys.argv[2]]; "
                     "print(v.decode() if isinstance(v, bytes) else v)\" " + run_dir + "/metrics.h5 " + attr);
  while (!out.empty() && (out.back() == '\n')) out.pop_back();
  return out;
}

std::string train_cmd(const std::string& method, const std::string& out, const std::string& extra) {
  return std::string(LOPA_BIN) + " train --model " + kModel + " --task story-names --method " + method +
         " --num-virtual-tokens 4 --rank 2 --batch-size 8 --max-length 64 --max-train-examples 256 "
         "--max-eval-examples 40 --eval-batch-size 32 --prompt-init vocab --device cpu --out " + out + " " + extra;
}

double mean(const std::vector<double>& v, size_t b, size_t e) {
  double s = 0;
  for (size_t i = b; i < e; ++i) s += v[i];
  return s / (e - b);
}
}  // namespace

class TrainEveryMethod : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainEveryMethod, WritesRunDirectoryAndLossFalls) {
  const auto method = GetParam();
  const auto out = tmpdir(method);
  const std::string lr = method == "fft" ? "0.003" : method == "lora" ? "0.01" : "0.03";
  ASSERT_EQ(run(train_cmd(method, out, "--max-steps 40 --eval-every 20 --lr " + lr)), 0) << method;
  for (auto f : {"config.ini", "metrics.h5", "predictions.jsonl", "checkpoint/COMPLETE"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << method << " " << f;
  EXPECT_TRUE(fs::is_directory(fs::path(out) / "adapter")) << method;
  if (method == "pt" || method == "lora" || method == "prefix") {
    EXPECT_TRUE(fs::exists(fs::path(out) / "adapter/adapter_config.json")) << method;
  }
  auto l = losses(out);
  ASSERT_EQ(l.size(), 40u) << method;
  EXPECT_LT(mean(l, 30, 40), mean(l, 0, 10)) << method << ": training loss did not fall";
  EXPECT_EQ(h5attr(out, "status"), "completed");
  EXPECT_GT(std::stoll(h5attr(out, "trainable_params")), 0);
  // The run log names the commit the program was built from (git, a second source of truth).
  auto head = capture("git -C " LOPA_SOURCE_DIR " rev-parse --short=12 HEAD 2>/dev/null");
  while (!head.empty() && head.back() == '\n') head.pop_back();
  const auto sha = h5attr(out, "git_sha");
  if (head.empty()) {
    EXPECT_EQ(sha, "unknown");
  } else {
    EXPECT_TRUE(sha == head || sha == head + "-dirty") << sha << " vs HEAD " << head;
  }
  // lopa eval on the same run prints the metrics and records them.
  auto js = capture(std::string(LOPA_BIN) + " eval --run " + out + " 2>/dev/null");
  EXPECT_NE(js.find("\"accuracy\""), std::string::npos) << js;
  EXPECT_NE(js.find("\"examples\":40"), std::string::npos) << js;
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(Methods, TrainEveryMethod, ::testing::Values("lopa", "pt", "idpg", "lora", "prefix", "fft"));

TEST(Train, ResumeAfterSigusr1GivesTheSameLossCurve) {
  const auto full = tmpdir("full"), split = tmpdir("split");
  const std::string extra = "--max-steps 24 --lr 0.01 --warmup-steps 3 --schedule cosine";
  ASSERT_EQ(run(train_cmd("lopa", full, extra)), 0);
  // Same run, stopped by SIGUSR1 as soon as training starts, then restarted on its directory.
  const auto cmd = train_cmd("lopa", split, extra) + " > /dev/null 2>&1";
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char*)nullptr);
    _exit(127);
  }
  // config.ini appears once the model and data are loaded, just before the first step.
  for (int i = 0; i < 600 && !fs::exists(fs::path(split) / "config.ini"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGUSR1);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 75) << "expected the checkpoint-and-exit status";
  const auto first = losses(split);
  ASSERT_GE(first.size(), 1u);
  ASSERT_LT(first.size(), 24u);
  EXPECT_EQ(h5attr(split, "status"), "interrupted");  // resumable, as DESIGN §5 names it (issue 18)
  ASSERT_EQ(run(train_cmd("lopa", split, extra)), 0);
  const auto a = losses(full), b = losses(split);
  ASSERT_EQ(a.size(), 24u);
  ASSERT_EQ(b.size(), 24u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6 * std::max(1.0, std::abs(a[i]))) << "step " << i + 1;
  // A completed run started again does not train again.
  ASSERT_EQ(run(train_cmd("lopa", split, extra)), 0);
  EXPECT_EQ(losses(split).size(), 24u);
  fs::remove_all(full);
  fs::remove_all(split);
}

// Trains `method` for `steps` at tp = 1 and tp = 2: the losses must agree step by step and, with
// `compare_adapter`, every tensor of the saved adapters (prefix tuning once kept a replicated table
// whose slices only their own rank trained: the losses hid it, the file did not).
void expect_tp2_matches_tp1(const std::string& method, int steps, const std::string& lr, bool compare_adapter) {
  const auto one = tmpdir("tp1_" + method), two = tmpdir("tp2_" + method);
  const std::string extra =
      "--max-steps " + std::to_string(steps) + " --lr " + lr + " --lora-dropout 0 --prompt-dropout 0";
  ASSERT_EQ(run(train_cmd(method, one, extra)), 0);
  ASSERT_EQ(run(std::string(LOPA_MPIRUN_CMD) + " -np 2 " + train_cmd(method, two, extra + " --tp 2")), 0) << method;
  const auto a = losses(one), b = losses(two);
  ASSERT_EQ(a.size(), static_cast<size_t>(steps));
  ASSERT_EQ(b.size(), static_cast<size_t>(steps));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * std::abs(a[i])) << method << " step " << i + 1;
  if (compare_adapter) {
    int files = 0;
    for (const auto& e : fs::directory_iterator(fs::path(one) / "adapter")) {
      if (e.path().extension() != ".safetensors") continue;
      ++files;
      auto f1 = lopa::SafetensorsFile::open(e.path().string());
      auto f2 = lopa::SafetensorsFile::open((fs::path(two) / "adapter" / e.path().filename()).string());
      for (const auto& name : f1.names()) {
        auto x = f1.tensor(name, at::kFloat), y = f2.tensor(name, at::kFloat);
        ASSERT_EQ(x.sizes(), y.sizes()) << method << " " << name;
        EXPECT_LT((x - y).abs().max().item<float>(), 1e-3) << method << " " << name << " differs between tp 1 and tp 2";
      }
    }
    EXPECT_GE(files, 1) << method;
  }
  fs::remove_all(one);
  fs::remove_all(two);
}

TEST(Train, TensorParallelTwoRanksMatchesOne) { expect_tp2_matches_tp1("lopa", 8, "0.01", false); }

// LoRA under tp = 2 once drifted from tp = 1 from step 3 on: the column-parallel delta's input gradient
// was all-reduced twice (it only shows once lora_B is non-zero, i.e. after the first update).
TEST(Train, TensorParallelLoraMatchesOne) { expect_tp2_matches_tp1("lora", 8, "0.01", false); }

TEST(Train, TensorParallelPromptTuningMatchesOne) { expect_tp2_matches_tp1("pt", 6, "0.01", true); }
// IDPG at lr 0.01 amplifies float rounding: tp = 1 on one thread against two threads already drifts
// 9e-5 by step 6 (Adam turns rounding-sized gradients into lr-sized steps). At lr 0.003 that drift is
// 3e-6, so the 1e-4 bound below tests tp and not the summation order.
TEST(Train, TensorParallelIdpgMatchesOne) { expect_tp2_matches_tp1("idpg", 6, "0.003", true); }
TEST(Train, TensorParallelPrefixMatchesOne) { expect_tp2_matches_tp1("prefix", 6, "0.01", true); }
TEST(Train, TensorParallelFullFinetuneMatchesOne) { expect_tp2_matches_tp1("fft", 6, "0.003", true); }

TEST(Train, BadKeysFailWithOneLine) {
  auto out = tmpdir("bad");
  auto msg = capture(train_cmd("lopa", out, "--max-steps 1 --schedule exponential") + " 2>&1");
  EXPECT_NE(msg.find("--schedule"), std::string::npos) << msg;
  EXPECT_NE(run(train_cmd("lopa", out, "--max-steps 1 --no-such-key 3")), 0);
  fs::remove_all(out);
}

// bf16 autocast (the GPU default; CPU autocast runs bf16 too): the first loss is the fp32 one within
// bf16 rounding (~0.4% per op), but not bit-equal (the casts happen), and training still learns.
TEST(Train, Bf16AutocastTracksFloat32) {
  const auto fp32 = tmpdir("amp_none"), bf16 = tmpdir("amp_bf16");
  const std::string extra = "--max-steps 12 --lr 0.03 --prompt-dropout 0";
  ASSERT_EQ(run(train_cmd("lopa", fp32, extra + " --autocast none")), 0);
  ASSERT_EQ(run(train_cmd("lopa", bf16, extra + " --autocast bf16")), 0);
  const auto a = losses(fp32), b = losses(bf16);
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), 12u);
  EXPECT_NEAR(a[0], b[0], 0.03 * a[0]);
  EXPECT_NE(a[0], b[0]) << "--autocast bf16 changed nothing";
  EXPECT_LT(mean(b, 8, 12), mean(b, 0, 4)) << "bf16 training loss did not fall";
  const auto bad = tmpdir("amp_bad");
  EXPECT_NE(capture(train_cmd("lopa", bad, "--max-steps 1 --autocast fp8") + " 2>&1").find("--autocast"), std::string::npos);
  fs::remove_all(bad);
  fs::remove_all(fp32);
  fs::remove_all(bf16);
}
