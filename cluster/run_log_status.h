// Reads the `status` and `error` attributes of a run's HDF5 log (DESIGN.md §5: running | completed |
// failed | interrupted) without opening anything else in it: what the executors need to skip or retry
// a cell, and why a run ended.
#pragma once

#include <string>

namespace lopa::cluster {

struct RunLogStatus {
  bool exists = false;    // RUN_DIR/metrics.h5 is there
  bool readable = false;  // it opened and had a string attribute `status`
  std::string status;     // the attribute's value when readable
  std::string log_error;  // the log's `error` attribute: why a failed or interrupted run ended
  std::string error;      // why it was not readable
};

// Looks at `run_dir`/metrics.h5. Never throws: a file being written (locked) or torn is reported
// through `readable = false` and `error`.
RunLogStatus read_run_log_status(const std::string& run_dir);

}  // namespace lopa::cluster
