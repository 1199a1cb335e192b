// Issue 18's run-log findings: the writer lock is never split (release_lock used to delete PATH.lock
// before unlocking it, so a process that had opened the old file and one that created a new file
// could each hold "the" lock); `interrupted` and `failed` statuses with their cause, as `lopa sweep
// status` reads them back; a resumed run's log truncated to its checkpoint's step.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "cluster/cell_state.h"
#include "cluster/run_log_status.h"
#include "results/run_log.h"
#include "results/run_log_reader.h"
#include "runtime/base/error.h"

namespace fs = std::filesystem;
using namespace lopa::results;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("lopa-runlog-rel-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

RunInfo info() {
  RunInfo i;
  i.method = "pt";
  i.task = "story-names";
  i.config_json = R"({"method":"pt"})";
  return i;
}

bool refused(const std::string& path) {
  try {
    RunLog::open_append(path).close();
    return false;
  } catch (const lopa::Error& e) {
    EXPECT_NE(std::string(e.what()).find("already open for writing"), std::string::npos) << e.what();
    return true;
  }
}

}  // namespace

TEST(RunLogLock, IsNeverSplit) {
  const auto dir = temp_dir("lock");
  const std::string path = (dir / "metrics.h5").string();
  auto first = RunLog::create(path, info());
  // Another writer opened the lock file while the first held it (the moment between its open and
  // its flock) ...
  const int early = ::open((path + ".lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(early, 0);
  EXPECT_NE(::flock(early, LOCK_EX | LOCK_NB), 0) << "the first writer's lock is not held";
  first.close();
  // ... and takes the lock on that file once the first releases it.
  EXPECT_TRUE(fs::exists(path + ".lock"));
  ASSERT_EQ(::flock(early, LOCK_EX | LOCK_NB), 0);
  // A third writer must now be refused: with the lock file deleted at release it created a new one
  // and held a lock of its own beside the second's.
  EXPECT_TRUE(refused(path));
  ::close(early);
  EXPECT_FALSE(refused(path));  // released: the next writer gets it
  fs::remove_all(dir);
}

TEST(RunLogLock, ALockFileReplacedWhileBeingTakenIsTakenAgain) {
  const auto dir = temp_dir("relock");
  const std::string path = (dir / "metrics.h5").string();
  RunLog::create(path, info()).close();
  // A stale lock file from an older build is replaced by hand: the writer locks the file at the path.
  fs::remove(path + ".lock");
  auto log = RunLog::open_append(path);
  const int other = ::open((path + ".lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(other, 0);
  EXPECT_NE(::flock(other, LOCK_EX | LOCK_NB), 0) << "the writer does not hold the file at " << path << ".lock";
  ::close(other);
  log.close();
  fs::remove_all(dir);
}

TEST(RunLogStatus, InterruptedAndFailedCarryTheirCause) {
  const auto dir = temp_dir("status");
  const std::string path = (dir / "metrics.h5").string();
  {
    auto log = RunLog::create(path, info());
    log.log_train(1, 0.5, 0.1, 1.0, 100, 0.1);
    log.set_status_interrupted("stopped by SIGUSR1 at step 1 after a checkpoint; rerun to resume");
  }
  auto r = RunLogReader::read(path);
  EXPECT_EQ(r.attr_string("status"), "interrupted");
  EXPECT_EQ(r.attr_string("error"), "stopped by SIGUSR1 at step 1 after a checkpoint; rerun to resume");
  EXPECT_EQ(r.attr_string("finished_at").size(), 20u);
  auto st = lopa::cluster::read_run_log_status(dir.string());
  EXPECT_TRUE(st.readable);
  EXPECT_EQ(st.status, "interrupted");
  EXPECT_EQ(st.log_error, "stopped by SIGUSR1 at step 1 after a checkpoint; rerun to resume");
  // `lopa sweep status` of a run started by hand (no executor record) says so, with the cause.
  auto cs = lopa::cluster::cell_status(dir.string(), (dir / "no-state.json").string(), nullptr, "");
  EXPECT_EQ(cs.status, "interrupted");
  EXPECT_NE(cs.detail.find("SIGUSR1"), std::string::npos) << cs.detail;
  {
    auto log = RunLog::open_append(path);  // resumed: running again, the cause cleared
    EXPECT_EQ(lopa::cluster::read_run_log_status(dir.string()).status, "running");
    EXPECT_EQ(lopa::cluster::read_run_log_status(dir.string()).log_error, "");
    log.set_status_failed("rank 1 failed");
  }
  cs = lopa::cluster::cell_status(dir.string(), (dir / "no-state.json").string(), nullptr, "");
  EXPECT_EQ(cs.status, "failed");
  EXPECT_NE(cs.detail.find("rank 1 failed"), std::string::npos) << cs.detail;
  // A finished attempt that exited non-zero names the log's cause in its reason.
  std::string reason;
  EXPECT_EQ(lopa::cluster::judge_attempt(1, lopa::cluster::read_run_log_status(dir.string()), true, reason), "failed");
  EXPECT_EQ(reason, "exit code 1: rank 1 failed");
  fs::remove_all(dir);
}

TEST(RunLogResume, TruncateAfterDropsLaterPointsOnly) {
  const auto dir = temp_dir("truncate");
  const std::string path = (dir / "metrics.h5").string();
  {
    auto log = RunLog::create(path, info(), FlushPolicy{0, 0});
    for (int s = 1; s <= 2100; ++s) log.log_train(s, s * 0.5, 0, 0, 0, 0);  // spans three 1024-point chunks
    log.log_eval(1000, {{"accuracy", 0.25}});
    log.log_eval(1500, {{"accuracy", 0.75}});
    log.log_eval(2000, {{"accuracy", 0.5}});
  }
  {
    auto log = RunLog::open_append(path);
    log.truncate_after(1500);  // the checkpoint resumed from
    EXPECT_EQ(log.num_train_points(), 1500);
    for (int s = 1501; s <= 1600; ++s) log.log_train(s, -s, 0, 0, 0, 0);  // replayed steps
    log.set_status_completed();
  }
  const auto r = RunLogReader::read(path);
  ASSERT_EQ(r.train.step.size(), 1600u);
  for (int i = 0; i < 1600; ++i) {
    ASSERT_EQ(r.train.step[i], i + 1);
    ASSERT_EQ(r.train.loss[i], i < 1500 ? (i + 1) * 0.5 : -(i + 1));
  }
  EXPECT_EQ(r.eval.step, (std::vector<int64_t>{1000, 1500}));
  EXPECT_EQ(r.eval.metrics.at("accuracy"), (std::vector<double>{0.25, 0.75}));
  // Truncating at or after the last step changes nothing.
  {
    auto log = RunLog::open_append(path);
    log.truncate_after(1600);
    EXPECT_EQ(log.num_train_points(), 1600);
  }
  fs::remove_all(dir);
}
