// RunLog / RunLogReader: exact round trip, resume, crash safety under a real SIGKILL, refusal of a
// second writer, and readability by h5dump and Python's h5py (independent readers).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "results/run_log.h"
#include "results/run_log_reader.h"
#include "runtime/base/error.h"

namespace fs = std::filesystem;
using namespace lopa::results;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("lopa-results-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

RunInfo sample_info() {
  RunInfo info;
  info.method = "lopa";
  info.task = "sst2";
  info.model = "../shared/models/stories260K";
  info.device = "cpu";
  info.git_sha = "abc123";
  info.config_json = R"({"method":"lopa","num-virtual-tokens":10,"rank":4,"lr":0.001,"seed":7})";
  info.seed = 7;
  info.world_size = 4;
  info.tp = 2;
  info.dp = 2;
  info.trainable_params = 26112;
  info.total_params = 292416;
  return info;
}

// Values whose binary form must survive exactly (no decimal round trip).
double train_value(int field, int64_t i) { return (field + 1) * 0.1 + std::sin(0.37 * i) / 3.0 + i * 1e-7; }

std::string run_cmd(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  *rc = ::pclose(p);
  return out;
}

}  // namespace

TEST(RunLog, RoundTripIsExact) {
  const fs::path dir = temp_dir("roundtrip");
  const std::string path = (dir / "metrics.h5").string();
  {
    auto log = RunLog::create(path, sample_info());
    for (int64_t i = 0; i < 2500; ++i)  // crosses two 1024-element chunks
      log.log_train(i * 2, train_value(0, i), train_value(1, i), train_value(2, i), train_value(3, i), train_value(4, i));
    log.log_eval(100, {{"accuracy", 0.5}, {"loss", 0.75}});
    log.log_eval(200, {{"accuracy", 2.0 / 3.0}, {"f1", 0.125}});  // f1 first seen: NaN at step 100
    log.set_attr("best_step", int64_t(200));
    log.set_attr("note", std::string("ünïcode ok"));
    log.set_attr("best_value", 2.0 / 3.0);
    log.set_status_completed();
  }
  EXPECT_TRUE(fs::exists(path + ".lock"));  // kept, unlocked: deleting it could split the lock (RunLogLock.*)
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const RunData r = RunLogReader::read(path);
  EXPECT_EQ(r.attr_int("schema_version"), 2);
  EXPECT_EQ(r.eval_split, "dev");
  EXPECT_EQ(r.attr_string("status"), "completed");
  EXPECT_EQ(r.attr_string("method"), "lopa");
  EXPECT_EQ(r.attr_string("task"), "sst2");
  EXPECT_EQ(r.attr_string("model"), "../shared/models/stories260K");
  EXPECT_EQ(r.attr_string("device"), "cpu");
  EXPECT_EQ(r.attr_string("git_sha"), "abc123");
  EXPECT_EQ(r.attr_int("seed"), 7);
  EXPECT_EQ(r.attr_int("world_size"), 4);
  EXPECT_EQ(r.attr_int("tp"), 2);
  EXPECT_EQ(r.attr_int("dp"), 2);
  EXPECT_EQ(r.attr_int("trainable_params"), 26112);
  EXPECT_EQ(r.attr_int("total_params"), 292416);
  EXPECT_EQ(r.attr_int("best_step"), 200);
  EXPECT_EQ(r.attr_string("note"), "ünïcode ok");
  EXPECT_EQ(r.attrs["best_value"].get<double>(), 2.0 / 3.0);
  EXPECT_EQ(r.attr_string("error"), "");
  EXPECT_EQ(r.attr_string("started_at").size(), 20u);
  EXPECT_EQ(r.attr_string("finished_at").size(), 20u);
  EXPECT_EQ(r.config()["rank"], 4);
  ASSERT_EQ(r.train.step.size(), 2500u);
  for (int64_t i = 0; i < 2500; ++i) {
    ASSERT_EQ(r.train.step[i], i * 2);
    ASSERT_EQ(r.train.loss[i], train_value(0, i));
    ASSERT_EQ(r.train.lr[i], train_value(1, i));
    ASSERT_EQ(r.train.grad_norm[i], train_value(2, i));
    ASSERT_EQ(r.train.tokens_per_s[i], train_value(3, i));
    ASSERT_EQ(r.train.elapsed_s[i], train_value(4, i));
  }
  ASSERT_EQ(r.eval.step, (std::vector<int64_t>{100, 200}));
  ASSERT_EQ(r.eval.metrics.size(), 3u);
  EXPECT_EQ(r.eval.metrics.at("accuracy"), (std::vector<double>{0.5, 2.0 / 3.0}));
  EXPECT_EQ(r.eval.metrics.at("loss")[0], 0.75);
  EXPECT_TRUE(std::isnan(r.eval.metrics.at("loss")[1]));
  EXPECT_TRUE(std::isnan(r.eval.metrics.at("f1")[0]));
  EXPECT_EQ(r.eval.metrics.at("f1")[1], 0.125);
  fs::remove_all(dir);
}

TEST(RunLog, FailedStatusAndResumeAppends) {
  const fs::path dir = temp_dir("resume");
  const std::string path = (dir / "metrics.h5").string();
  {
    auto log = RunLog::create(path, sample_info());
    for (int i = 0; i < 10; ++i) log.log_train(i, i, 0, 0, 0, 0);
    log.log_eval(9, {{"accuracy", 0.25}});
    log.set_status_failed("CUDA out of memory at step 10");
  }
  RunData r = RunLogReader::read(path);
  EXPECT_EQ(r.attr_string("status"), "failed");
  EXPECT_EQ(r.attr_string("error"), "CUDA out of memory at step 10");
  {
    auto log = RunLog::open_append(path);
    EXPECT_EQ(log.num_train_points(), 10);
    EXPECT_EQ(RunLogReader::read(path).attr_string("status"), "running");
    for (int i = 10; i < 15; ++i) log.log_train(i, i, 0, 0, 0, 0);
    log.log_eval(14, {{"accuracy", 0.5}, {"loss", 1.5}});
    log.set_status_completed();
  }
  r = RunLogReader::read(path);
  EXPECT_EQ(r.attr_string("status"), "completed");
  EXPECT_EQ(r.attr_string("error"), "");
  ASSERT_EQ(r.train.step.size(), 15u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(r.train.loss[i], i);
  EXPECT_EQ(r.eval.step, (std::vector<int64_t>{9, 14}));
  EXPECT_EQ(r.eval.metrics.at("accuracy"), (std::vector<double>{0.25, 0.5}));
  EXPECT_TRUE(std::isnan(r.eval.metrics.at("loss")[0]));
  EXPECT_EQ(r.eval.metrics.at("loss")[1], 1.5);
  fs::remove_all(dir);
}

TEST(RunLog, SecondWriterIsRefused) {
  const fs::path dir = temp_dir("twowriters");
  const std::string path = (dir / "metrics.h5").string();
  auto first = RunLog::create(path, sample_info());
  // Same process, second handle.
  try {
    RunLog::open_append(path);
    FAIL() << "second writer was not refused";
  } catch (const lopa::Error& e) {
    EXPECT_NE(std::string(e.what()).find("already open for writing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::to_string(::getpid())), std::string::npos) << e.what();
  }
  EXPECT_THROW(RunLog::create(path, sample_info()), lopa::Error);
  // Another process.
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      RunLog::open_append(path);
      ::_exit(0);
    } catch (const lopa::Error&) {
      ::_exit(3);
    }
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << "the other process was not refused";
  first.log_train(0, 1, 2, 3, 4, 5);
  first.close();
  // Once released, a writer may open it again.
  auto again = RunLog::open_append(path);
  EXPECT_EQ(again.num_train_points(), 1);
  again.close();
  fs::remove_all(dir);
}

TEST(RunLog, FlushPolicyPublishesWithoutExplicitFlush) {
  const fs::path dir = temp_dir("policy");
  const std::string path = (dir / "metrics.h5").string();
  auto log = RunLog::create(path, sample_info(), FlushPolicy{100, 0});
  for (int i = 0; i < 250; ++i) log.log_train(i, i, 0, 0, 0, 0);
  EXPECT_EQ(RunLogReader::read(path).train.step.size(), 200u);  // two policy flushes, 50 buffered
  log.log_eval(250, {{"accuracy", 1.0}});                     // an evaluation publishes everything
  EXPECT_EQ(RunLogReader::read(path).train.step.size(), 250u);
  log.close();
  fs::remove_all(dir);
}

// A child process logs with a flush every `flush_every` steps and reports each flushed step count
// through a pipe; the parent kills it with SIGKILL at a random moment (possibly inside a flush), then
// checks that the file opens in the reader and in h5dump, holds every flushed point, and resumes.
TEST(RunLog, SurvivesSigkill) {
  const fs::path dir = temp_dir("sigkill");
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 8; ++trial) {
    const std::string path = (dir / ("metrics" + std::to_string(trial) + ".h5")).string();
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      const int every = 1 + trial % 3;  // flush very often: many kills land inside a flush
      auto log = RunLog::create(path, sample_info(), FlushPolicy{0, 0});
      for (int64_t i = 0;; ++i) {
        log.log_train(i, train_value(0, i), train_value(1, i), train_value(2, i), train_value(3, i), train_value(4, i));
        if ((i + 1) % every == 0) {
          log.flush();
          const int64_t flushed = i + 1;  // every point up to here has been published
          if (::write(fds[1], &flushed, sizeof(flushed)) != sizeof(flushed)) ::_exit(1);
        }
        if (i % 50 == 49) log.log_eval(i, {{"accuracy", i / 1e4}});
      }
    }
    ::close(fds[1]);
    // Wait for a random number of flushes, then kill without warning.
    const int wait_flushes = 10 + static_cast<int>(rng() % 100);
    int64_t last_flushed = 0;
    for (int k = 0; k < wait_flushes; ++k) ASSERT_EQ(::read(fds[0], &last_flushed, sizeof(last_flushed)), (ssize_t)sizeof(last_flushed));
    if (trial % 2) ::usleep(rng() % 3000);
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int64_t v;
    while (::read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v)) last_flushed = v;  // flushes before the kill
    ::close(fds[0]);

    const RunData r = RunLogReader::read(path);
    EXPECT_EQ(r.attr_string("status"), "running");
    ASSERT_GE((int64_t)r.train.step.size(), last_flushed) << "trial " << trial;
    for (size_t i = 0; i < r.train.step.size(); ++i) {
      ASSERT_EQ(r.train.step[i], (int64_t)i);
      ASSERT_EQ(r.train.loss[i], train_value(0, i));
      ASSERT_EQ(r.train.elapsed_s[i], train_value(4, i));
    }
    for (size_t k = 0; k < r.eval.step.size(); ++k) EXPECT_EQ(r.eval.metrics.at("accuracy")[k], r.eval.step[k] / 1e4);
    int rc = 0;
    const std::string dump = run_cmd("h5dump -H '" + path + "'", &rc);
    EXPECT_EQ(rc, 0) << dump;
    EXPECT_NE(dump.find("DATASET \"loss\""), std::string::npos);
    // The killed writer's lock died with it: the run resumes at once.
    auto resumed = RunLog::open_append(path);
    EXPECT_EQ(resumed.num_train_points(), (int64_t)r.train.step.size());
    resumed.close();
  }
  fs::remove_all(dir);
}

TEST(RunLog, ReadableByH5pyAndH5dump) {
  const fs::path dir = temp_dir("h5py");
  const std::string path = (dir / "metrics.h5").string();
  {
    auto log = RunLog::create(path, sample_info());
    for (int i = 0; i < 3; ++i) log.log_train(10 * (i + 1), 1.5 - 0.25 * i, 1e-3, 0.5 + i, 1000.0 * (i + 1), 0.5 * (i + 1));
    log.log_eval(30, {{"accuracy", 0.875}, {"loss", 0.25}});
    log.set_status_completed();
  }
  const std::string script = dir / "check.py";
  std::ofstream(script) << R"PY(
import sys, json, h5py
f = h5py.File(sys.argv[1], "r")
a = f.attrs
names = ["schema_version", "status", "config", "method", "task", "model", "seed", "world_size", "tp", "dp",
         "device", "git_sha", "started_at", "finished_at", "trainable_params", "total_params", "error"]
missing = [n for n in names if n not in a]
assert not missing, missing
assert a["schema_version"] == 2 and a["status"] == "completed" and a["method"] == "lopa", dict(a)
assert a["eval_split"] in ("dev", b"dev"), a["eval_split"]
assert json.loads(a["config"])["num-virtual-tokens"] == 10
assert a["seed"] == 7 and a["tp"] == 2 and a["trainable_params"] == 26112
t = f["train"]
assert sorted(t.keys()) == sorted(["step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"]), list(t.keys())
assert list(t["step"][:]) == [10, 20, 30] and t["step"].dtype.kind == "i"
assert list(t["loss"][:]) == [1.5, 1.25, 1.0]
assert list(t["grad_norm"][:]) == [0.5, 1.5, 2.5]
assert t["loss"].chunks is not None and t["loss"].maxshape == (None,)
assert list(f["eval"].keys()) == ["dev"], list(f["eval"].keys())
e = f["eval/dev"]
assert list(e["step"][:]) == [30] and list(e["accuracy"][:]) == [0.875] and list(e["loss"][:]) == [0.25]
print("h5py ok")
)PY";
  int rc = 0;
  std::string out = run_cmd("/usr/bin/python3 '" + script + "' '" + path + "'", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("h5py ok"), std::string::npos) << out;
  out = run_cmd("h5dump -d /eval/dev/accuracy '" + path + "'", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("0.875"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST(RunLog, ReaderRejectsNonLogs) {
  const fs::path dir = temp_dir("bad");
  const std::string junk = (dir / "metrics.h5").string();
  std::ofstream(junk) << "not hdf5";
  try {
    RunLogReader::read(junk);
    FAIL();
  } catch (const lopa::Error& e) {
    EXPECT_NE(std::string(e.what()).find(junk), std::string::npos);
  }
  EXPECT_THROW(RunLogReader::read((dir / "missing.h5").string()), lopa::Error);
  EXPECT_THROW(RunLog::open_append((dir / "missing.h5").string()), lopa::Error);
  fs::remove_all(dir);
}
