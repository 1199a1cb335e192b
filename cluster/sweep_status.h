// Per-cell status of a sweep (pending / running / completed / failed / interrupted) from the executors' records,
// the run logs and, when jobs were submitted, SLURM's view of their array tasks (sacct, else squeue).
#pragma once

#include <string>
#include <vector>

#include "cluster/cell_state.h"
#include "cluster/sweep_plan.h"

namespace lopa::cluster {

struct SweepStatus {
  std::vector<CellStatus> cells;  // in plan order
  int pending = 0, running = 0, completed = 0, failed = 0;
  int interrupted = 0;  // stopped at a checkpoint (SIGUSR1, run log `interrupted`): resumable
};

// `ask_slurm` = false skips sacct/squeue (recorded SLURM tasks are then assumed alive).
SweepStatus sweep_status(const Plan& plan, bool ask_slurm = true);

// A table (one line per cell and a summary line), or JSON
// {"name","root","summary":{"total","pending","running","completed","failed","interrupted"},"cells":[{...}]}.
// The table's summary line names interrupted cells only when there are some.
std::string status_table(const Plan& plan, const SweepStatus& s);
std::string status_json(const Plan& plan, const SweepStatus& s);

}  // namespace lopa::cluster
