// The trainer of one cell: `lopa train` and `lopa eval`. Loads the frozen FM (tensor-parallel over the
// process group), the task, the method; trains with AdamW, a warmup schedule, gradient accumulation,
// clipping and data parallelism; evaluates every eval-every steps keeping the best adapter; checkpoints
// for exact resume (also on SIGUSR1, then exits with 75); writes the run directory of DESIGN.md §4.
#pragma once

#include <map>
#include <string>

namespace lopa {

// Exit status of `lopa train` after a SIGUSR1 checkpoint (cluster/cell_command.h kExitCheckpointed).
inline constexpr int kTrainExitCheckpointed = 75;

// `kv`: the resolved training keys (train_config_keys names). Every rank calls it (MPI must be
// initialised by the caller when launched under mpirun). Returns the process exit status.
int run_training(const std::map<std::string, std::string>& kv, const std::string& run_dir);

// Evaluates RUN_DIR's adapter on `split` ("" = the task's reported split), writes predictions.jsonl and
// the metrics into metrics.h5; prints the metrics as one JSON line on rank 0. Code tasks: `details_path`,
// when not empty, receives the per-sample sandbox results (write_score_details). Returns the exit status.
int run_evaluation(const std::string& run_dir, const std::string& split, const std::string& device,
                   const std::string& details_path = "");

// Installs the SIGUSR1 handler that asks the training loop to checkpoint and stop.
void install_checkpoint_signal();

}  // namespace lopa
