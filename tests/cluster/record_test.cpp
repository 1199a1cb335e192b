// `lopa sweep record`'s library half (cluster::record_attempt): the state file each event of a SLURM
// attempt leaves, the verdict of a finished attempt from its exit code and run log, and refusals that
// write nothing. Expected records are written out by hand from the event.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "cluster/cell_state.h"
#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "results/run_log.h"
#include "runtime/base/error.h"
#include "tests/cluster/test_util.h"

namespace lopa::cluster {
namespace {

namespace fs = std::filesystem;

class RecordTest : public ::testing::Test {
 protected:
  void SetUp() override { dir = test::make_temp_dir("record"); }
  void TearDown() override { fs::remove_all(dir); }
  Plan plan(const std::string& launch_extra = "") {
    const auto path = dir + "/spec.ini";
    test::write_text(path, "name = rec\nroot = " + dir + "/runs\n[grid]\nmodel = m\ntask = sst2\nmethod = pt\n"
                           "seed = 0, 1\n[launch]\n" + launch_extra);
    return make_plan(read_sweep_spec(path));
  }
  std::string dir;
};

TEST_F(RecordTest, RunningThenRequeuedThenFinishedWithoutRunLog) {
  const auto p = plan();
  const auto id = p.cells.at(1).id;
  const auto state = paths_of(p.spec).state(id);

  AttemptEvent e;
  e.cell = id;
  e.status = "running";
  e.attempt = 2;
  e.job_id = "77_1";
  e.log = "/logs/a.log";
  auto st = record_attempt(p, e);
  const auto on_disk = read_cell_state(state);
  for (const CellState* s : std::vector<const CellState*>{&st, &on_disk}) {
    EXPECT_EQ(s->status, "running");
    EXPECT_EQ(s->attempt, 2);
    EXPECT_EQ(s->exit_code, -1);
    EXPECT_EQ(s->executor, "slurm");
    EXPECT_EQ(s->job_id, "77_1");
    EXPECT_EQ(s->log, "/logs/a.log");
    EXPECT_FALSE(s->host.empty());
    EXPECT_EQ(s->started_at.size(), 20u) << s->started_at;  // 2026-11-26T21:30:00Z
    EXPECT_EQ(s->finished_at, "");
  }

  e.status = "requeued";
  e.exit_code = 143;
  st = record_attempt(p, e);
  EXPECT_EQ(st.status, "requeued");
  EXPECT_EQ(st.exit_code, 143);
  EXPECT_EQ(st.reason, "requeued after SLURM's pre-timeout signal");
  EXPECT_EQ(st.started_at, on_disk.started_at);  // kept from the running record
  EXPECT_FALSE(st.finished_at.empty());

  // Exit 0 but no metrics.h5: failed while [launch] require-run-log is true (the default).
  e.status = "finished";
  e.exit_code = 0;
  st = record_attempt(p, e);
  EXPECT_EQ(st.status, "failed");
  EXPECT_EQ(st.reason, "exit code 0 but no run log (metrics.h5)");
  EXPECT_EQ(read_cell_state(state).status, "failed");

  e.exit_code = 75;  // checkpointed and stopped
  EXPECT_EQ(record_attempt(p, e).reason, "stopped at a checkpoint (exit 75) before finishing");
  e.exit_code = 137;
  EXPECT_EQ(record_attempt(p, e).reason, "killed by signal 9");
}

TEST_F(RecordTest, FinishedIsJudgedOnTheRunLog) {
  const auto p = plan();
  const auto id = p.cells.at(0).id;
  const auto run_dir = paths_of(p.spec).run_dir(id);
  fs::create_directories(run_dir);
  {
    auto log = results::RunLog::create(run_dir + "/metrics.h5", results::RunInfo{});
    log.set_status_completed();
  }
  AttemptEvent e;
  e.cell = id;
  e.status = "finished";
  e.exit_code = 0;
  const auto st = record_attempt(p, e);
  EXPECT_EQ(st.status, "completed");
  EXPECT_EQ(st.reason, "");
  EXPECT_EQ(read_cell_state(paths_of(p.spec).state(id)).status, "completed");

  // Without a required run log, exit 0 alone completes a cell.
  const auto q = plan("require-run-log = false\n");
  e.cell = q.cells.at(1).id;
  EXPECT_EQ(record_attempt(q, e).status, "completed");
}

TEST_F(RecordTest, UnknownCellOrStatusWritesNothing) {
  const auto p = plan();
  AttemptEvent e;
  e.cell = "no-such-cell";
  e.status = "running";
  try {
    record_attempt(p, e);
    FAIL() << "unknown cell accepted";
  } catch (const Error& err) {
    EXPECT_EQ(std::string(err.what()), "lopa sweep record: no cell 'no-such-cell' in " + dir + "/spec.ini");
  }
  e.cell = p.cells.at(0).id;
  e.status = "done";
  try {
    record_attempt(p, e);
    FAIL() << "unknown status accepted";
  } catch (const Error& err) {
    EXPECT_EQ(std::string(err.what()), "lopa sweep record: --status 'done': expected running, requeued or finished");
  }
  EXPECT_FALSE(fs::exists(paths_of(p.spec).dir() + "/state"));
}

}  // namespace
}  // namespace lopa::cluster
