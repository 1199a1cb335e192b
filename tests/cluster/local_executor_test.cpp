// The local executor through the real `lopa sweep run`: 2-rank cells under mpirun, a cell that fails
// once and succeeds on its retry, a cell that keeps failing, and a sweep interrupted with SIGTERM
// and run again, which skips the cells that completed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "cluster/cell_state.h"
#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "tests/cluster/test_util.h"

namespace lopa::cluster {
namespace {

using namespace test;
namespace fs = std::filesystem;

std::string spec_text(const std::string& root, const std::string& seeds, const std::string& program_args,
                      int ranks, int retries) {
  return "name = local\nroot = " + root + "\n[grid]\nmodel = ../shared/models/stories260K\ntask = sst2\n"
         "method = pt, lopa\nseed = " + seeds + "\n[fixed]\nnum-virtual-tokens = 4\nrank = 2\n"
         "[launch]\nranks-per-cell = " + std::to_string(ranks) + "\nmax-retries = " + std::to_string(retries) +
         "\nreport-command = {lopa} sweep status --spec {spec} --no-slurm\n"
         "cell-command = {launch} /usr/bin/python3 " + cell_program() + " --config {config} --out {run_dir} " +
         program_args + "\n";
}

nlohmann::json status_json(const std::string& spec) {
  std::string out;
  EXPECT_EQ(run(std::string(LOPA_BIN) + " sweep status --json --spec " + spec + " 2>/dev/null", &out), 0) << out;
  return nlohmann::json::parse(out, nullptr, false);
}

TEST(LocalExecutor, TwoRankCellsAndACellThatFailsOnceThenSucceeds) {
  const auto dir = make_temp_dir("local");
  const auto root = dir + "/runs", spec = dir + "/spec.ini";
  write_text(spec, spec_text(root, "0, 1", "--fail-once-if seed=1", 2, 1));
  const auto plan = make_plan(read_sweep_spec(spec));
  ASSERT_EQ(plan.cells.size(), 4u);

  std::string out;
  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep run --jobs 1 --spec " + spec, &out), 0) << out;
  EXPECT_NE(out.find("4/4 done, 0 failed, 0 left"), std::string::npos) << out;
  // The detail carries the cause the cell's run log recorded (cell_program.py's failing attempt).
  EXPECT_NE(out.find("attempt 1 failed (exit code 3: failing on purpose (test knob)); retrying"), std::string::npos)
      << out;
  for (const auto& c : plan.cells) {
    const auto run_dir = root + "/" + c.id;
    const bool flaky = c.keys.at("seed") == "1";
    // Both ranks of every attempt ran (mpirun -np 2), rank 0 wrote the run log.
    EXPECT_TRUE(fs::exists(run_dir + "/rank-0-of-2.txt")) << c.id;
    EXPECT_TRUE(fs::exists(run_dir + "/rank-1-of-2.txt")) << c.id;
    EXPECT_EQ(count_lines(run_dir + "/invocations.log"), flaky ? 2 : 1) << c.id;
    const auto st = read_cell_state(root + "/sweep/state/" + c.id + ".json");
    EXPECT_EQ(st.status, "completed");
    EXPECT_EQ(st.attempt, flaky ? 2 : 1);
    EXPECT_EQ(st.exit_code, 0);
    const auto log = read_text(root + "/sweep/logs/" + c.id + ".log");
    EXPECT_NE(log.find("attempt 1/2"), std::string::npos) << log;
    EXPECT_EQ(log.find("attempt 2/2") != std::string::npos, flaky) << log;
    // The config file the command got holds the cell's keys.
    EXPECT_NE(read_text(root + "/sweep/configs/" + c.id + ".ini").find("seed = " + c.keys.at("seed") + "\n"), std::string::npos);
  }
  const auto j = status_json(spec);
  ASSERT_TRUE(j.is_object()) << out;
  EXPECT_EQ(j["summary"]["completed"], 4);
  EXPECT_EQ(j["summary"]["failed"], 0);
  // The report step ran after the cells ([launch] report-command) and saw all four.
  const auto report = read_text(root + "/sweep/report.txt");
  for (const auto& c : plan.cells) EXPECT_NE(report.find(c.id), std::string::npos) << report;

  // Running again runs nothing: every cell is completed.
  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep run --no-report --spec " + spec, &out), 0) << out;
  EXPECT_NE(out.find("4 already completed, 0 to run"), std::string::npos) << out;
  for (const auto& c : plan.cells)
    EXPECT_EQ(count_lines(root + "/" + c.id + "/invocations.log"), c.keys.at("seed") == "1" ? 2 : 1);
  fs::remove_all(dir);
}

TEST(LocalExecutor, ACellThatKeepsFailingEndsFailedAfterItsRetries) {
  const auto dir = make_temp_dir("local");
  const auto root = dir + "/runs", spec = dir + "/spec.ini";
  write_text(spec, spec_text(root, "0, 1", "--always-fail-if seed=1", 1, 2));
  const auto plan = make_plan(read_sweep_spec(spec));
  std::string out;
  EXPECT_EQ(run(std::string(LOPA_BIN) + " sweep run --no-report --spec " + spec, &out), 1) << out;
  EXPECT_NE(out.find("summary: 2 completed (0 skipped as already completed), 2 failed"), std::string::npos) << out;
  for (const auto& c : plan.cells) {
    const bool bad = c.keys.at("seed") == "1";
    EXPECT_EQ(count_lines(root + "/" + c.id + "/invocations.log"), bad ? 3 : 1) << c.id;  // 1 + max-retries
    const auto st = read_cell_state(root + "/sweep/state/" + c.id + ".json");
    EXPECT_EQ(st.status, bad ? "failed" : "completed");
    if (bad) {
      EXPECT_EQ(st.exit_code, 3);
      EXPECT_NE(out.find(c.id + "  attempts 3"), std::string::npos) << out;
    }
  }
  const auto j = status_json(spec);
  EXPECT_EQ(j["summary"]["completed"], 2);
  EXPECT_EQ(j["summary"]["failed"], 2);
  fs::remove_all(dir);
}

TEST(LocalExecutor, InterruptedSweepRerunSkipsCompletedCells) {
  const auto dir = make_temp_dir("local");
  const auto root = dir + "/runs", spec = dir + "/spec.ini";
  write_text(spec, spec_text(root, "0, 1, 2", "--sleep 1.0", 1, 0));
  const auto plan = make_plan(read_sweep_spec(spec));
  ASSERT_EQ(plan.cells.size(), 6u);

  // Start the sweep, let two cells complete, then stop it with SIGTERM.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const auto log = dir + "/first.out";
    freopen(log.c_str(), "w", stdout);
    execl(LOPA_BIN, LOPA_BIN, "sweep", "run", "--jobs", "1", "--no-report", "--spec", spec.c_str(), (char*)nullptr);
    _exit(127);
  }
  const auto completed = [&]() {
    int n = 0;
    for (const auto& c : plan.cells) n += read_cell_state(root + "/sweep/state/" + c.id + ".json").status == "completed";
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (completed() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(completed(), 2);
  kill(pid, SIGTERM);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 130) << read_text(dir + "/first.out");
  const int done_before = completed();
  EXPECT_GE(done_before, 2);
  EXPECT_LT(done_before, 6);
  std::map<std::string, int> runs_before;
  for (const auto& c : plan.cells)
    runs_before[c.id] = fs::exists(root + "/" + c.id + "/invocations.log") ? count_lines(root + "/" + c.id + "/invocations.log") : 0;

  std::string out;
  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep run --jobs 1 --no-report --spec " + spec, &out), 0) << out;
  EXPECT_NE(out.find(std::to_string(done_before) + " already completed, " + std::to_string(6 - done_before) + " to run"),
            std::string::npos) << out;
  for (const auto& c : plan.cells) {
    const bool was_done = runs_before[c.id] > 0 && fs::exists(root + "/" + c.id + "/metrics.h5") &&
                          read_run_log_status(root + "/" + c.id).status == "completed" &&
                          count_lines(root + "/" + c.id + "/invocations.log") == runs_before[c.id];
    const int runs_after = count_lines(root + "/" + c.id + "/invocations.log");
    EXPECT_EQ(read_cell_state(root + "/sweep/state/" + c.id + ".json").status, "completed") << c.id;
    // Cells completed before the interruption ran exactly once; the others ran once more now.
    if (was_done) EXPECT_EQ(runs_after, runs_before[c.id]) << c.id;
    else EXPECT_EQ(runs_after, runs_before[c.id] + 1) << c.id;
  }
  int unchanged = 0;
  for (const auto& c : plan.cells) unchanged += count_lines(root + "/" + c.id + "/invocations.log") == runs_before[c.id];
  EXPECT_EQ(unchanged, done_before);
  fs::remove_all(dir);
}

TEST(LocalExecutor, RefusesMoreProcessesThanCoresUnlessForced) {
  const auto dir = make_temp_dir("local");
  const auto spec = dir + "/spec.ini";
  const int too_many = int(std::thread::hardware_concurrency()) + 1;  // ranks of one cell
  write_text(spec, spec_text(dir + "/runs", "0", "", too_many, 0));
  std::string out;
  EXPECT_EQ(run(std::string(LOPA_BIN) + " sweep run --no-report --jobs 1 --spec " + spec, &out), 1);
  EXPECT_NE(out.find("exceed the"), std::string::npos) << out;
  EXPECT_NE(out.find("--force"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir + "/runs/sweep/state"));  // refused before anything ran
  fs::remove_all(dir);
}

TEST(LocalExecutor, ExitZeroWithoutARunLogIsAFailureUnlessNoneIsExpected) {
  const auto dir = make_temp_dir("local");
  const auto spec = dir + "/spec.ini";
  const std::string base = "name = nolog\nroot = " + dir + "/runs\n[grid]\nmodel = m\ntask = rte\nmethod = pt\n"
                           "[launch]\nmax-retries = 0\nreport-command =\ncell-command = mkdir -p {run_dir}\n";
  write_text(spec, base);
  std::string out;
  EXPECT_EQ(run(std::string(LOPA_BIN) + " sweep run --spec " + spec, &out), 1) << out;
  EXPECT_NE(out.find("exit code 0 but no run log (metrics.h5)"), std::string::npos) << out;
  write_text(spec, base + "require-run-log = false\n");
  EXPECT_EQ(run(std::string(LOPA_BIN) + " sweep run --spec " + spec, &out), 0) << out;
  EXPECT_NE(out.find("1/1 done, 0 failed, 0 left"), std::string::npos) << out;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lopa::cluster
