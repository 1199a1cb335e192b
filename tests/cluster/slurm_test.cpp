// A real one-node SLURM (slurmctld + slurmd + munged, started by scripts/slurm/start.sh in a temporary
// directory and stopped by scripts/slurm/stop.sh through their pid files): a sweep of 6 cells with
// 2 ranks each submitted as a job array with `lopa sweep submit`, an aggregation job after it, and
// SLURM's pre-timeout signal making a cell checkpoint, requeue and resume.
// The cells run `lopa train` + `lopa eval` when the program has them, otherwise the test cell program
// (tests/cluster/cell_program.py) that follows the same contract. Skipped only when SLURM is absent.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cluster/cell_command.h"
#include "cluster/cell_state.h"
#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "cluster/train_keys.h"
#include "tests/cluster/test_util.h"

namespace lopa::cluster {
namespace {

using namespace test;
namespace fs = std::filesystem;

bool lopa_has(const std::string& command) {
  std::string out;
  run(std::string(LOPA_BIN) + " --help", &out);
  return out.find("\n  " + command + " ") != std::string::npos;
}

class Slurm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* p : {"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "scancel"})
      if (!have_program(p) && !have_program(std::string("/usr/sbin/") + p)) {
        missing = p;
        return;
      }
    cluster_dir = make_temp_dir("slurm");
    fs::remove(cluster_dir);  // start.sh wants an absent or empty directory; it recreates it
    std::string out;
    const int code = run("bash " + std::string(LOPA_SOURCE_DIR) + "/scripts/slurm/start.sh " + cluster_dir, &out);
    start_output = out;
    if (code != 0) {
      start_failed = true;
      return;
    }
    setenv("SLURM_CONF", (cluster_dir + "/slurm.conf").c_str(), 1);
  }
  static void TearDownTestSuite() {
    if (cluster_dir.empty()) return;
    // Stops exactly the daemons start.sh started (pid files in cluster_dir), also after failures.
    // The cluster's logs stay for a look when a test failed.
    const bool keep = ::testing::UnitTest::GetInstance()->failed_test_count() > 0;
    run("bash " + std::string(LOPA_SOURCE_DIR) + "/scripts/slurm/stop.sh " + cluster_dir + (keep ? "" : " --remove"));
    if (keep) std::cerr << "SLURM test cluster kept for inspection: " << cluster_dir << "\n";
    unsetenv("SLURM_CONF");
  }
  void SetUp() override {
    if (!missing.empty()) GTEST_SKIP() << missing << " not found: SLURM is not installed (bash scripts/setup.sh installs slurm-wlm and munge)";
    ASSERT_FALSE(start_failed) << "scripts/slurm/start.sh failed:\n" << start_output;
    work = make_temp_dir("slurm-sweep");
  }
  void TearDown() override {
    if (!work.empty() && !HasFailure()) fs::remove_all(work);
  }
  // Waits until none of this user's jobs is queued or running.
  static bool wait_queue_empty(int seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string out;
      if (run("squeue -h --me -o %i", &out) == 0 && trim(out).empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return false;
  }
  static std::string logs_of(const std::string& root) {
    std::string all;
    for (const auto& e : fs::directory_iterator(root + "/sweep/logs")) all += "--- " + e.path().string() + "\n" + read_text(e.path());
    const auto ctld = read_text(cluster_dir + "/log/slurmctld.log");
    return all + "--- slurmctld.log (tail)\n" + ctld.substr(ctld.size() > 3000 ? ctld.size() - 3000 : 0);
  }
  static std::string submit(const std::string& spec) {
    std::string out;
    EXPECT_EQ(run(std::string(LOPA_BIN) + " sweep submit --spec " + spec, &out), 0) << out;
    const auto at = out.find("array job ");
    if (at == std::string::npos) return "";
    return out.substr(at + 10, out.find_first_not_of("0123456789", at + 10) - at - 10);
  }

  static inline std::string missing, cluster_dir, start_output;
  static inline bool start_failed = false;
  std::string work;
};

TEST_F(Slurm, JobArraySweepOfTwoRankCellsCompletesAndIsReported) {
  const bool trainer = lopa_has("train") && lopa_has("eval");
  const bool report = lopa_has("report");
  const auto root = work + "/runs", spec = work + "/spec.ini";
  std::string text = "name = slurm-e2e\nroot = " + root + "\n[grid]\nmodel = " + std::string(LOPA_SHARED_DIR) +
                     "/models/stories260K\ntask = sst2\nmethod = lopa, pt, idpg\nseed = 0, 1\n[fixed]\n"
                     "num-virtual-tokens = 2\nrank = 1\n";
  if (trainer)  // the real cell: lopa train + lopa eval, a few steps
    text += "data-dir = " + std::string(LOPA_SHARED_DIR) +
            "/data\nmax-steps = 2\nbatch-size = 2\nmax-length = 64\nmax-train-examples = 16\nmax-eval-examples = 16\n";
  text += "[launch]\nexecutor = slurm\nranks-per-cell = 2\nmax-parallel = 2\nmax-retries = 1\nsignal-seconds = 60\n";
  if (!trainer)
    text += "cell-command = {launch} /usr/bin/python3 " + cell_program() +
            " --config {config} --out {run_dir} --sleep 0.5 --fail-once-if seed=1\n";
  if (!report) text += "report-command = {lopa} sweep status --spec {spec}\n";
  write_text(spec, text);
  const auto plan = make_plan(read_sweep_spec(spec));
  ASSERT_EQ(plan.cells.size(), 6u);

  const auto job = submit(spec);
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_queue_empty(trainer ? 900 : 300)) << logs_of(root);

  std::string out;
  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep status --json --spec " + spec + " 2>/dev/null", &out), 0) << out;
  const auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << out;
  EXPECT_EQ(j["summary"]["completed"], 6) << out << logs_of(root);
  for (size_t i = 0; i < plan.cells.size(); ++i) {
    const auto& c = plan.cells[i];
    EXPECT_EQ(j["cells"][i]["status"], "completed") << c.id;
    EXPECT_EQ(read_run_log_status(root + "/" + c.id).status, "completed") << c.id;
    const auto st = read_cell_state(root + "/sweep/state/" + c.id + ".json");
    EXPECT_EQ(st.executor, "slurm");
    EXPECT_EQ(st.job_id.substr(0, job.size() + 1), job + "_");
    EXPECT_TRUE(fs::exists(root + "/sweep/logs/slurm-" + st.job_id + ".out")) << st.job_id;
    if (!trainer) {
      EXPECT_TRUE(fs::exists(root + "/" + c.id + "/rank-0-of-2.txt")) << c.id;  // srun -n 2 made two ranks
      EXPECT_TRUE(fs::exists(root + "/" + c.id + "/rank-1-of-2.txt")) << c.id;
      EXPECT_EQ(count_lines(root + "/" + c.id + "/invocations.log"), c.keys.at("seed") == "1" ? 2 : 1) << c.id;
      EXPECT_EQ(st.attempt, c.keys.at("seed") == "1" ? 2 : 1) << c.id;  // retried inside its array task
    }
  }
  // The afterany aggregation job ran after the array and its table holds every cell.
  const auto table = read_text(root + "/sweep/report.txt");
  ASSERT_FALSE(table.empty()) << logs_of(root);
  if (report) {  // lopa report: one row per method, each cell the mean over its 2 seeds "(2)", none left out
    EXPECT_NE(table.find("runs not in the table: 0"), std::string::npos) << table;
    size_t cells = 0;
    for (size_t at = table.find("(2) |"); at != std::string::npos; at = table.find("(2) |", at + 1)) ++cells;
    EXPECT_EQ(cells, 3u) << table;
  } else {
    for (const auto& c : plan.cells) {  // `lopa sweep status` prints "<id>  completed  ..." per cell
      const auto at = table.find(c.id + " ");
      ASSERT_NE(at, std::string::npos) << table;
      const auto line = table.substr(at, table.find('\n', at) - at);
      EXPECT_NE(line.find(" completed "), std::string::npos) << line;
    }
  }
  // Submitting again submits nothing: every cell is completed.
  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep submit --spec " + spec, &out), 0) << out;
  EXPECT_NE(out.find("nothing to submit"), std::string::npos) << out;
}

TEST_F(Slurm, PreTimeoutSignalCheckpointsRequeuesAndResumes) {
  const auto root = work + "/runs", spec = work + "/spec.ini";
  write_text(spec, "name = slurm-requeue\nroot = " + root +
                       "\n[grid]\nmodel = m\ntask = rte\nmethod = pt\n[launch]\nexecutor = slurm\nranks-per-cell = 2\n"
                       "signal-seconds = 60\nreport-command =\ncell-command = {launch} /usr/bin/python3 " +
                       cell_program() + " --config {config} --out {run_dir} --sleep 15\n");
  const auto plan = make_plan(read_sweep_spec(spec));
  ASSERT_EQ(plan.cells.size(), 1u);
  const auto& id = plan.cells[0].id;
  const auto job = submit(spec);
  ASSERT_FALSE(job.empty());
  const auto task = job + "_0";
  const auto run_dir = root + "/" + id;

  // Once the cell works, send what SLURM sends before the time limit: SIGUSR1 to the batch shell.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  // Every rank must be past its start: rank 1 (which only leaves its marker) would otherwise die of a
  // SIGUSR1 that reaches it while its interpreter starts (exit 138 under load, seen in CI).
  auto started = [&] { return fs::exists(run_dir + "/invocations.log") && fs::exists(run_dir + "/rank-1-of-2.txt"); };
  while (!started() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(started()) << logs_of(root);
  std::string out;
  ASSERT_EQ(run("scancel --batch --signal=USR1 " + task, &out), 0) << out;

  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (read_cell_state(root + "/sweep/state/" + id + ".json").status != "requeued" &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto st = read_cell_state(root + "/sweep/state/" + id + ".json");
  ASSERT_EQ(st.status, "requeued") << logs_of(root);
  EXPECT_EQ(st.exit_code, kExitCheckpointed);
  EXPECT_TRUE(fs::exists(run_dir + "/checkpoint/state"));
  EXPECT_EQ(read_run_log_status(run_dir).status, "running");  // stopped at a checkpoint, not finished
  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep status --spec " + spec + " --cell " + id, &out), 0);
  EXPECT_EQ(trim(out), "pending");

  // SLURM holds a requeued job for a while (BeginTime); let it start now instead.
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (run("squeue -h -j " + task + " -o %T", &out) == 0 && trim(out) != "PENDING" &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(run("scontrol update jobid=" + task + " StartTime=now", &out), 0) << out;
  ASSERT_TRUE(wait_queue_empty(180)) << logs_of(root);

  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep status --spec " + spec + " --cell " + id, &out), 0);
  EXPECT_EQ(trim(out), "completed") << logs_of(root);
  EXPECT_EQ(read_run_log_status(run_dir).status, "completed");
  // Two runs of the cell: the first stopped at the checkpoint, the second resumed from it.
  const auto inv = read_text(run_dir + "/invocations.log");
  EXPECT_EQ(count_lines(run_dir + "/invocations.log"), 2) << inv;
  EXPECT_NE(inv.find("resumed=0"), std::string::npos) << inv;
  EXPECT_NE(inv.find("resumed=1"), std::string::npos) << inv;
  const auto slurm_log = read_text(root + "/sweep/logs/slurm-" + task + ".out");
  EXPECT_NE(slurm_log.find("pre-timeout signal"), std::string::npos) << slurm_log;
  EXPECT_NE(slurm_log.find("requeueing " + task), std::string::npos) << slurm_log;
  EXPECT_NE(slurm_log.find("(restart 1)"), std::string::npos) << slurm_log;
}

}  // namespace
}  // namespace lopa::cluster
