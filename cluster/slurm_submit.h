// The SLURM executor: writes a job-array batch script (one array task per cell still to run), the
// cells manifest it reads its cell from, and an aggregation job that runs `lopa report` after the
// array (afterany), then submits both with sbatch. Each task runs its cell with srun (or mpirun
// inside the allocation), retries a failed cell up to [launch] max-retries times, and on SLURM's
// pre-timeout signal (--signal=B:USR1@N) forwards SIGUSR1 to the cell (the trainer checkpoints and
// exits 75, see cell_command.h) and requeues itself, so the cell resumes in the next run of the task.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cluster/sweep_plan.h"

namespace lopa::cluster {

struct SubmitResult {
  int tasks = 0;                  // array size (cells still to run)
  std::string array_script, report_script, manifest;
  std::string array_job, report_job;  // job ids ("" on --dry-run or when nothing is left to run)
  std::vector<std::string> sbatch_commands;
};

// The launcher prefix inside an array task: srun [srun-args] -n R | mpirun -np R [...].
std::string slurm_launch_prefix(const LaunchSpec& launch);

// The text of the array batch script for `tasks` array tasks.
std::string array_script_text(const Plan& plan, int tasks, const std::string& workdir);
// The text of the aggregation job's batch script.
std::string report_script_text(const Plan& plan, const std::string& workdir);

// Writes the plan files, manifest and scripts; unless dry_run, submits them and records the job ids
// in root/sweep/jobs.json. Cells already completed or running are left out of the array.
SubmitResult submit_slurm(const Plan& plan, bool dry_run);

// The array job ids recorded by earlier submissions, and for every cell id the task it was last
// submitted as ("<job>_<index>").
struct SubmittedJobs {
  std::vector<std::string> array_jobs;
  std::map<std::string, std::string> cell_task;
};
SubmittedJobs read_submitted_jobs(const SweepPaths& paths);

}  // namespace lopa::cluster
