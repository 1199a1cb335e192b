// A rank that fails takes the whole job down within bounded time, naming the rank and cause. Each test
// runs tests/runtime/distributed/test_failure_worker.cpp under mpirun -np 2 and checks its exit status, its
// duration, and what it printed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

namespace {

struct Outcome {
  int status = -1;  // exit status of mpirun (the shell's)
  double seconds = 0;
  std::string output;  // stdout and stderr together
};

// `timeout` bounds the test itself: a hang shows up as status 124.
Outcome run_job(const std::string& scenario, int np = 2, const std::string& env = "") {
  const std::string cmd = env + " timeout 60 " LOPA_MPIRUN_CMD " -np " + std::to_string(np) + " " LOPA_FAILURE_WORKER
                          " " + scenario + " " + ::testing::TempDir() + " 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  Outcome o;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return o;
  std::array<char, 4096> buf;
  while (fgets(buf.data(), buf.size(), p)) o.output += buf.data();
  const int raw = pclose(p);
  o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(Failure, HealthyJobSucceeds) {
  const Outcome o = run_job("ok");
  EXPECT_EQ(o.status, 0) << o.output;
  EXPECT_TRUE(has(o.output, "sum 8")) << o.output;  // 3 all-reduces of ones over 2 ranks: 2, 4, 8
}

TEST(Failure, ExceptionOnOneRankAbortsTheJobNamingIt) {
  const Outcome o = run_job("throw");
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.status, 124) << "the job hung: " << o.output;
  EXPECT_LT(o.seconds, 30) << o.output;
  EXPECT_TRUE(has(o.output, "rank 1: simulated failure while loading the model")) << o.output;
}

TEST(Failure, ExceptionCaughtByMainEndsTheJob) {
  // The error leaves through MpiRuntime's destructor (no MPI_Finalize) to main, which prints it and
  // exits 1; mpirun then ends the rank still waiting in its all-reduce.
  const Outcome o = run_job("unwind");
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.status, 124) << "the job hung: " << o.output;
  EXPECT_LT(o.seconds, 30) << o.output;
  EXPECT_TRUE(has(o.output, "rank 1: failed")) << o.output;
  EXPECT_TRUE(has(o.output, "worker: error: simulated failure reported by main")) << o.output;
}

TEST(Failure, FileOnlyOneRankSeesAbortsTheJob) {
  const Outcome o = run_job("bad-file");
  EXPECT_NE(o.status, 0);
  EXPECT_LT(o.seconds, 30) << o.output;
  EXPECT_TRUE(has(o.output, "rank 1: ")) << o.output;
  EXPECT_TRUE(has(o.output, "shard-1.bin: cannot open file")) << o.output;
}

TEST(Failure, KilledRankMakesMpirunEndTheJob) {
  // Open MPI's mpirun terminates every rank when one dies on a signal, and says which one.
  const Outcome o = run_job("kill");
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.status, 124) << "the job hung: " << o.output;
  EXPECT_LT(o.seconds, 30) << o.output;
  EXPECT_TRUE(has(o.output, "rank 1")) << o.output;
  EXPECT_TRUE(has(o.output, "signal 9")) << o.output;
}

TEST(Failure, DifferentConfigsAreDetectedAtStartUp) {
  const Outcome o = run_job("config");
  EXPECT_NE(o.status, 0);
  EXPECT_LT(o.seconds, 30) << o.output;
  EXPECT_TRUE(has(o.output, "rank 1 started with a configuration different from rank 0's")) << o.output;
}

TEST(Failure, WatchdogEndsACollectiveThatNeverCompletes) {
  const Outcome o = run_job("hang", 2, "LOPA_COLLECTIVE_TIMEOUT_S=3");
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.status, 124) << "the job hung: " << o.output;
  EXPECT_LT(o.seconds, 30) << o.output;
  EXPECT_TRUE(has(o.output, "rank 0: all_reduce on the world group did not complete within 3 s")) << o.output;
}
