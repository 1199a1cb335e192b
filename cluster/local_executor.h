// The local executor: runs a plan's cells on this machine, one after another or several at once
// when cores allow (ranks-per-cell x jobs <= cores unless forced), each cell's command in its own
// process group with its output in root/sweep/logs/<cell-id>.log. Completed cells are skipped;
// a failed cell is tried again up to [launch] max-retries times; SIGINT/SIGTERM stop the running
// cells and leave them to the next pass. A progress line follows every finished attempt.
#pragma once

#include <ostream>
#include <string>

#include "cluster/sweep_plan.h"

namespace lopa::cluster {

struct LocalRunOptions {
  int jobs = 0;            // cells at once; 0 = [launch] jobs, else cores / ranks-per-cell
  bool force = false;      // allow jobs x ranks-per-cell > cores
  bool run_report = true;  // run [launch] report-command at the end
};

// The MPI launcher prefix for a local cell: mpirun -np R [--oversubscribe] [--allow-run-as-root] [args].
std::string local_launch_prefix(const LaunchSpec& launch, int cores);

// Runs the plan. Returns 0 when every cell ends completed, 1 when any failed (or the report step
// failed), 130 when interrupted. Progress and the summary go to `out`.
int run_local(const Plan& plan, const LocalRunOptions& options, std::ostream& out);

}  // namespace lopa::cluster
