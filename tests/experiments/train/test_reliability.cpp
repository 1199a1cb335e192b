// `lopa train` fails loudly and its run log loses nothing (issue 18), end to end on stories260K:
// a checkpoint write on a full disk (/dev/full, and a small tmpfs when this process may mount one)
// ends in one error naming the file, the log `failed` with it, no temporary left, exit 1 (not a
// SIGABRT); a non-finite loss stops the run naming the step; generation from non-finite weights fails
// and `lopa info --check-weights` names the tensor; SIGUSR1 leaves the log `interrupted`; a run killed
// with SIGKILL after a checkpoint has a log covering the checkpoint's step, and its resumed log holds
// every step exactly once.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/io/safetensors.h"

namespace fs = std::filesystem;

namespace {

const std::string kModel = std::string(LOPA_SHARED_DIR) + "/models/stories260K";

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lopa_reliability_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  return d.string();
}

struct Result {
  int code = -1;  // exit status, 128 + signal when killed
  std::string out;  // stdout and stderr
};

Result run(const std::string& cmd) {
  Result r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = p ? pclose(p) : -1;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
  return r;
}

// An attribute of RUN_DIR/metrics.h5 read by h5py (an independent reader).
std::string h5attr(const std::string& run_dir, const std::string& attr) {
  auto out = run("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); v=f.attrs[sys.argv[2]]; "
                 "print(v.decode() if isinstance(v, bytes) else v)\" " + run_dir + "/metrics.h5 " + attr).out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<int64_t> train_steps(const std::string& run_dir) {
  auto out = run("/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); "
                 "[print(int(x)) for x in f['train/step'][:]]\" " + run_dir + "/metrics.h5").out;
  std::vector<int64_t> v;
  std::istringstream in(out);
  int64_t x;
  while (in >> x) v.push_back(x);
  return v;
}

std::string train_cmd(const std::string& model, const std::string& out, const std::string& extra) {
  return std::string(LOPA_BIN) + " train --model " + model + " --task story-names --method pt "
         "--num-virtual-tokens 4 --batch-size 8 --max-length 64 --max-train-examples 64 --max-eval-examples 16 "
         "--eval-batch-size 16 --prompt-init vocab --lr 0.03 --device cpu --out " + out + " " + extra;
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

std::vector<std::string> temporaries(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos) out.push_back(e.path().string());
  return out;
}

// The full-disk verdict shared by /dev/full and tmpfs: one error line naming the file, exit 1, no
// LibTorch trace, the log failed with that error, no temporary left.
void expect_loud_disk_failure(const Result& r, const std::string& out, const std::string& file) {
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(count(r.out, file + ": write failed (No space left on device)"), 1) << r.out;
  EXPECT_EQ(r.out.find("c10::Error"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("terminate"), std::string::npos) << r.out;
  EXPECT_EQ(h5attr(out, "status"), "failed");
  EXPECT_NE(h5attr(out, "error").find(file + ": write failed (No space left on device)"), std::string::npos);
  EXPECT_EQ(temporaries(out), std::vector<std::string>{});
}

// A copy of stories260K whose `tensor` holds a NaN and a +Inf.
std::string poisoned_model(const std::string& dir, const std::string& tensor) {
  fs::create_directories(dir);
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(kModel + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
  auto src = lopa::SafetensorsFile::open(kModel + "/model.safetensors");
  lopa::NamedTensors ts;
  for (const auto& n : src.names()) {
    auto t = src.tensor(n).clone();
    if (n == tensor) {
      t.view({-1})[5] = std::nanf("");
      t.view({-1})[9] = INFINITY;
    }
    ts.emplace_back(n, t);
  }
  lopa::save_safetensors(dir + "/model.safetensors", ts);
  return dir;
}

}  // namespace

TEST(Reliability, CheckpointOnAFullDiskFailsLoudly) {
  const auto out = tmpdir("devfull");
  fs::create_directories(out + "/checkpoint");
  fs::create_symlink("/dev/full", out + "/checkpoint/rank0.pt.tmp");  // every write to it: ENOSPC
  const auto r = run(train_cmd(kModel, out, "--max-steps 6 --save-every 3"));
  expect_loud_disk_failure(r, out, out + "/checkpoint/rank0.pt");
  EXPECT_FALSE(fs::exists(out + "/checkpoint/COMPLETE"));
  // The failed run resumes from nothing and completes once the disk has room.
  const auto again = run(train_cmd(kModel, out, "--max-steps 6 --save-every 3"));
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(h5attr(out, "status"), "completed");
  fs::remove_all(out);
}

TEST(Reliability, RunDirectoryOnAFullTmpfs) {
  const auto out = tmpdir("tmpfs");
  fs::create_directories(out);
  // The log and config fit in 512 KiB; full fine-tuning's checkpoint (weights + two Adam moments of
  // stories260K, ~3 MB) does not.
  if (::mount("tmpfs", out.c_str(), "tmpfs", 0, "size=512k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                 << "); CheckpointOnAFullDiskFailsLoudly covers the same path through /dev/full";
  auto cmd = train_cmd(kModel, out, "--max-steps 4 --save-every 2");
  cmd.replace(cmd.find("--method pt"), 11, "--method fft");
  cmd.replace(cmd.find("--lr 0.03"), 9, "--lr 0.001");
  const auto r = run(cmd);
  expect_loud_disk_failure(r, out, out + "/checkpoint/rank0.pt");
  ::umount(out.c_str());
  fs::remove_all(out);
}

TEST(Reliability, NonFiniteWeightsAreNamedAndStopEverything) {
  const auto dir = tmpdir("nan");
  const std::string tensor = "model.layers.0.mlp.down_proj.weight";
  const auto bad = poisoned_model(dir + "/model", tensor);
  // lopa info --check-weights names the tensor and its file; the original model passes.
  auto r = run(std::string(LOPA_BIN) + " info --model " + bad + " --check-weights");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("non-finite weights in 1 of "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'" + tensor + "' in " + bad + "/model.safetensors: 1 NaN, 1 +Inf of "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the first at flat index 5"), std::string::npos) << r.out;
  r = run(std::string(LOPA_BIN) + " info --model " + kModel + " --check-weights");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("weights:      all finite"), std::string::npos) << r.out;
  // Generation does not print [0, 0, ...] with exit 0.
  r = run(std::string(LOPA_BIN) + " generate --model " + bad + " --prompt-ids 1,2,3 --max-new-tokens 4");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("logits of generated token 1 hold NaN or +Inf"), std::string::npos) << r.out;
  // Training stops at step 1 with the log failed, naming the step; nothing non-finite is logged.
  const auto out = dir + "/run";
  r = run(train_cmd(bad, out, "--max-steps 5"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("step 1: loss is nan (not finite)"), std::string::npos) << r.out;
  EXPECT_EQ(h5attr(out, "status"), "failed");
  EXPECT_NE(h5attr(out, "error").find("step 1: loss is nan"), std::string::npos);
  EXPECT_TRUE(train_steps(out).empty());
  fs::remove_all(dir);
}

TEST(Reliability, Sigusr1LeavesTheLogInterruptedAndResumes) {
  const auto out = tmpdir("usr1");
  const auto cmd = train_cmd(kModel, out, "--max-steps 400 --save-every 7");
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > /dev/null 2>&1").c_str(), (char*)nullptr);
    _exit(127);
  }
  // Signal once training has started (the first checkpoint exists).
  for (int i = 0; i < 600 && !fs::exists(out + "/checkpoint/COMPLETE"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGUSR1);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 75) << st;
  EXPECT_EQ(h5attr(out, "status"), "interrupted");
  EXPECT_NE(h5attr(out, "error").find("SIGUSR1"), std::string::npos);
  std::ifstream marker(out + "/checkpoint/COMPLETE");
  int64_t ck = 0;
  marker >> ck;
  const auto steps = train_steps(out);
  ASSERT_EQ((int64_t)steps.size(), ck);  // the log covers the checkpoint exactly
  const auto r = run(cmd);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(h5attr(out, "status"), "completed");
  const auto all = train_steps(out);
  ASSERT_EQ(all.size(), 400u);
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], (int64_t)i + 1);
  fs::remove_all(out);
}

// SIGKILL at random moments after the first checkpoint: the log on disk always covers the checkpoint's
// step, and the resumed run logs every step exactly once.
TEST(Reliability, KilledRunLosesNoRowOnResume) {
  const auto out = tmpdir("kill9");
  const auto cmd = train_cmd(kModel, out, "--max-steps 300 --save-every 5");
  std::srand(18);
  for (int trial = 0; trial < 3; ++trial) {
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > /dev/null 2>&1").c_str(), (char*)nullptr);
      _exit(127);
    }
    for (int i = 0; i < 600 && !fs::exists(out + "/checkpoint/COMPLETE"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::rand() % 400));
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st)) break;  // it finished first: nothing left to resume
    // Killed while writing a checkpoint (between removing the marker and writing it again), the
    // run restarts from scratch: nothing to cover.
    if (!fs::exists(out + "/checkpoint/COMPLETE")) continue;
    std::ifstream marker(out + "/checkpoint/COMPLETE");
    int64_t ck = -1;
    marker >> ck;
    ASSERT_GE(ck, 5) << "trial " << trial;
    const auto steps = train_steps(out);
    EXPECT_GE((int64_t)steps.size(), ck) << "trial " << trial << ": the log lags the checkpoint";
    EXPECT_EQ(h5attr(out, "status"), "running");
  }
  const auto r = run(cmd);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(h5attr(out, "status"), "completed");
  const auto all = train_steps(out);
  ASSERT_EQ(all.size(), 300u);
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], (int64_t)i + 1) << "row " << i;
  fs::remove_all(out);
}
