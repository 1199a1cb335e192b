// A sweep spec (DESIGN.md §6): an INI file with top-level `name` and `root`, a [grid] of training
// keys whose comma-separated values are crossed, [grid.METHOD] axes crossed only into that method's
// cells (a learning rate per method), [fixed] keys given to every cell, [download] naming the
// Hugging Face hub id of each checkpoint directory, and [launch] saying how cells run (local executor
// or SLURM job array). Read with Boost.Program_options; every mistake (unknown key or section, empty
// axis, a value a method rejects) is a one-line lopa::Error naming the spec file and the key, raised
// before anything runs.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lopa::cluster {

// [launch]: how cells run. Defaults are what an empty [launch] means.
struct LaunchSpec {
  std::string executor = "local";  // local | slurm: what `lopa sweep run` does
  int ranks_per_cell = 1;          // MPI processes per cell (mpirun -np / srun -n)
  int jobs = 0;                    // local: cells at once (0 = as many as cores allow)
  int max_retries = 1;             // a failed cell runs at most 1 + max_retries times per executor pass
  int max_parallel = 0;            // SLURM: array tasks at once (%K), 0 = no limit
  // SLURM resources of one array task (one cell).
  int nodes = 1;
  int gpus_per_node = 0;
  int cpus_per_task = 1;
  std::string mem;        // e.g. 8G (empty: cluster default)
  std::string time;       // e.g. 01:00:00 (empty: partition default)
  std::string partition;  // empty: cluster default
  std::string account;
  std::string qos;
  std::vector<std::string> sbatch_extra;  // further sbatch options, e.g. --constraint=a100
  std::string launcher = "srun";          // SLURM: srun | mpirun (inside the allocation)
  std::string srun_args = "--mpi=pmix";   // Open MPI under srun needs a PMI plugin
  std::string mpirun = "mpirun";          // the mpirun program (local executor, and launcher = mpirun)
  std::string mpirun_args;                // extra mpirun options
  int signal_seconds = 300;               // SLURM pre-timeout signal (SIGUSR1) lead time; 0 = none
  // A cell whose command exits 0 without writing RUN_DIR/metrics.h5 failed (a launcher that lost its
  // ranks can exit 0). Off only for cell commands that write no run log.
  bool require_run_log = true;
  // Shell command run for one cell ({placeholders} are expanded and shell-quoted, see cell_command.h)
  // and the aggregation run after all cells (empty = none).
  std::string cell_command =
      "{launch} {lopa} train --config {config} --out {run_dir} && {launch} {lopa} eval --run {run_dir}";
  std::string report_command = "{lopa} report --root {root}";
  std::string lopa;  // the lopa program cells run (default: the running one)
};

struct SweepSpec {
  std::string path;  // the spec file, as given
  std::string name;
  std::string root;  // absolute: relative roots are taken from the current directory
  // [grid] axes and [fixed] keys, keyed by training key; values trimmed, in the order written.
  std::map<std::string, std::vector<std::string>> grid;
  std::map<std::string, std::string> fixed;
  // [grid.METHOD] axes: method -> training key -> values. Crossed only into cells of that method, where
  // they take the place of [fixed] (which then holds the value of the other methods); never in [grid].
  std::map<std::string, std::map<std::string, std::vector<std::string>>> method_grid;
  // [download]: checkpoint directory (a model or encoder value of the spec, lexically normalised, see
  // normal_dir) -> Hugging Face hub id (owner/name).
  std::map<std::string, std::string> download;
  std::string launch_tp;  // [launch] tp: the default tp of every cell (DESIGN.md §6 puts it there)
  LaunchSpec launch;
};

// Reads and checks a spec file. Throws lopa::Error naming `path` and the offending key.
SweepSpec read_sweep_spec(const std::string& path);

// `dir` lexically normalised without a trailing '/': the form [download] keys are compared in
// (models/x, ./models/x and models/x/ are one directory).
std::string normal_dir(const std::string& dir);

// The hub id [download] gives the directory `dir` ("" when none).
std::string hub_id_of(const SweepSpec& spec, const std::string& dir);

// Names of the [launch] keys (for messages and --help).
const std::vector<std::string>& launch_key_names();

}  // namespace lopa::cluster
