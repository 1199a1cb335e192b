// An executor's record of one cell (root/sweep/state/<cell-id>.json), and the cell's status derived
// from that record, the run's HDF5 log and, for SLURM, the scheduler's view of its array task.
// Statuses: pending | running | completed | failed.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cluster/run_log_status.h"

namespace lopa::cluster {

struct CellState {
  std::string status;      // running | completed | failed | requeued; "" when there is no record
  int attempt = 0;         // attempts started in the current executor pass (1-based)
  int exit_code = -1;      // of the last finished attempt
  long pid = 0;            // local: the cell command's process (group leader)
  std::string host;        // where pid lives
  std::string executor;    // local | slurm
  std::string job_id;      // SLURM: <array job>_<task>
  std::string started_at, finished_at;
  std::string log;         // the attempt's log file
  std::string reason;      // why it failed, in words
};

// A missing or unreadable file gives status "".
CellState read_cell_state(const std::string& path);
// Atomic (write to a temporary file, then rename).
void write_cell_state(const std::string& path, const CellState& s);

// The judgement of a finished attempt: exit code 0 and a run log that says completed (with
// require_log = false, no run log at all also passes). Returns "completed" or "failed" and sets
// `reason` for failures.
std::string judge_attempt(int exit_code, const RunLogStatus& log, bool require_log, std::string& reason);

struct Plan;  // cluster/sweep_plan.h

// An event of one attempt, as the SLURM array script reports it (`lopa sweep record`).
struct AttemptEvent {
  std::string cell;    // cell id
  std::string status;  // running | requeued | finished
  int attempt = 1;
  int exit_code = -1;  // of the attempt (requeued, finished)
  std::string executor = "slurm";
  std::string job_id;  // SLURM array task <job>_<index>
  std::string log;     // the attempt's log file
};

// Records the event in the cell's state file (root/sweep/state/<id>.json) and returns the record. A
// finished attempt is judged here (judge_attempt on its exit code and the run log, as the local
// executor judges its own), so both executors keep one kind of record. Throws lopa::Error for a cell
// not in the plan or an unknown status, before writing anything.
CellState record_attempt(const Plan& plan, const AttemptEvent& e);

// SLURM's states of array tasks ("<job>_<task>" -> RUNNING, PENDING, COMPLETED, TIMEOUT, ...).
// `known` is false when neither sacct nor squeue answered.
struct SlurmView {
  bool known = false;
  bool from_sacct = false;  // squeue only lists queued and running tasks
  std::map<std::string, std::string> task_state;
};

struct CellStatus {
  std::string status;  // pending | running | completed | failed | interrupted (run log, no executor record)
  std::string detail;  // one line for people
  CellState state;
  RunLogStatus log;
};

// `slurm` may be null (no job recorded). `job_id` is the array task this cell was last submitted as
// ("" when never submitted).
CellStatus cell_status(const std::string& run_dir, const std::string& state_path, const SlurmView* slurm,
                       const std::string& job_id, bool require_log = true);

// Asks sacct (then squeue) about the tasks of these array jobs.
SlurmView query_slurm(const std::vector<std::string>& array_jobs);

}  // namespace lopa::cluster
