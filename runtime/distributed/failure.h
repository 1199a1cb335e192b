// How a multi-rank job fails: one rank's error takes every rank down at once, with a message naming
// the rank and the cause (never a hang of the ranks still waiting in a collective). A single process
// keeps the ordinary path: the exception reaches the CLI, which prints it and exits non-zero.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace lopa {

struct ProcessGroup;

// Prints "rank N: <what>" to stderr and ends the job: MPI_Abort(MPI_COMM_WORLD, 1) under MPI (every
// rank is killed by the launcher), std::exit(1) otherwise.
[[noreturn]] void abort_job(const std::string& what);

// Runs `body` and returns its exit status. An exception escaping it aborts the job via abort_job when
// MPI runs with more than one rank; in a single process it is rethrown.
int run_rank(const std::function<int()>& body);

// 64-bit FNV-1a of `text`.
uint64_t fingerprint(const std::string& text);

// Collective over the world group: throws (on every rank) naming the ranks whose `config` differs
// from rank 0's, e.g. ranks started with different command lines or config files.
void check_same_config(const ProcessGroup& pg, const std::string& config);

}  // namespace lopa
