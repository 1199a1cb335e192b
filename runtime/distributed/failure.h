// How a multi-rank job fails: one rank's error takes every rank down at once, with a message naming
// the rank and the cause (never a hang of the ranks still waiting in a collective). A single process
// keeps the ordinary path: the exception reaches the CLI, which prints it and exits non-zero.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "runtime/base/error.h"

namespace lopa {

struct ProcessGroup;

// An error that every rank of the world raised at the same point, by a collective decision (see
// agree_on_failure): each rank may still take part in collectives before the job ends, so rank 0 can
// record it (e.g. in the run log) before any rank aborts the job.
struct AgreedError : Error {
  using Error::Error;
};

// Collective over the world group: every rank passes its own error ("" when it succeeded). When any
// rank failed, every rank throws AgreedError: its own message, or "<what>: rank K failed (its message
// is on its stderr)". In a single process: throws AgreedError(error) when error is not empty.
void agree_on_failure(const ProcessGroup& pg, const std::string& error, const std::string& what);

// Prints "rank N: <what>" to stderr and ends the job: MPI_Abort(MPI_COMM_WORLD, 1) under MPI (every
// rank is killed by the launcher), std::exit(1) otherwise.
[[noreturn]] void abort_job(const std::string& what);

// Runs `body` and returns its exit status. An exception escaping it aborts the job via abort_job when
// MPI runs with more than one rank; in a single process it is rethrown.
int run_rank(const std::function<int()>& body);

// While it lives, SIGTERM, SIGINT and SIGHUP run `hook(signal)` on a watcher thread, then end the
// process as the signal would have. mpirun and srun send SIGTERM to every surviving rank when one rank
// dies (or the job is cancelled) and SIGKILL about a second later (mpirun; srun after KillWait): time
// enough for rank 0 to record in the run log why the run ended. `hook` runs beside the main thread,
// so what it touches must be thread-safe; an exception from it is printed and ignored. One at a time.
class TerminationWatch {
 public:
  explicit TerminationWatch(std::function<void(int)> hook);
  ~TerminationWatch();
  TerminationWatch(const TerminationWatch&) = delete;
  TerminationWatch& operator=(const TerminationWatch&) = delete;

 private:
  struct Impl;
  Impl* impl_;
};

// 64-bit FNV-1a of `text`.
uint64_t fingerprint(const std::string& text);

// Collective over the world group: throws (on every rank) naming the ranks whose `config` differs
// from rank 0's, e.g. ranks started with different command lines or config files.
void check_same_config(const ProcessGroup& pg, const std::string& config);

}  // namespace lopa
