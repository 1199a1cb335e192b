// The shell commands the executors run: a cell's command from [launch] cell-command with its
// {placeholders} filled in, the MPI launcher prefix ({launch}), and small process helpers.
//
// Placeholders (values are shell-quoted, except {launch}, which is a command prefix):
//   {launch}  mpirun -np R ... (local, or SLURM with launcher = mpirun) | srun ... -n R (SLURM)
//   {lopa}    the lopa program       {config}  the cell's config file   {run_dir} root/<cell-id>
//   {cell_id} {index} {ranks} {root} {name} {spec} (the sweep's copy of its spec file)
// `{{` and `}}` stand for literal braces.
//
// Contract with the trainer (SLURM pre-timeout): on SIGUSR1, `lopa train` finishes its current step,
// writes RUN_DIR/checkpoint/, leaves the run log's status "running", and exits with
// kExitCheckpointed; started again on the same RUN_DIR it resumes from that checkpoint.
#pragma once

#include <csignal>
#include <map>
#include <string>

namespace lopa::cluster {

constexpr int kCheckpointSignal = SIGUSR1;
constexpr int kExitCheckpointed = 75;  // EX_TEMPFAIL: "stopped on request; run me again to resume"

std::string shell_quote(const std::string& s);

// Expands {name} placeholders of `tmpl`. Throws lopa::Error "<where>: unknown placeholder {x} ..." for
// names not in `vars`.
std::string expand_command(const std::string& tmpl, const std::map<std::string, std::string>& vars,
                           const std::string& where);

// Checks that `tmpl` names only placeholders in `allowed` (throws like expand_command).
void check_command_template(const std::string& tmpl, const std::string& allowed_csv, const std::string& where);

// Placeholders a cell command and a report command may use.
inline const char* kCellPlaceholders = "launch,lopa,config,run_dir,cell_id,index,ranks,root,name,spec";
inline const char* kReportPlaceholders = "lopa,root,name,spec";

// CPUs this process may run on (sched_getaffinity), at least 1.
int available_cores();

// The lopa program to put in commands: `configured` when set, else this running executable.
std::string lopa_program(const std::string& configured);

// Runs `command` with /bin/sh, capturing stdout (stderr is left alone). Returns the exit status
// (128 + signal when killed, -1 when it could not start).
int run_capture(const std::string& command, std::string& out);

// True when `program` is found on PATH (or is an executable path).
bool have_program(const std::string& program);

std::string hostname();
std::string utc_now();  // 2026-11-26T21:30:00Z

}  // namespace lopa::cluster
