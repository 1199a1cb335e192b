// Sandbox: runs untrusted (model-written) Python programs, each in a child `python3 -I` inside
// bubblewrap, and reports pass/fail. Per program:
//  - A pass is proven by the harness, never by the exit status alone: the program runs under a harness
//    (`python -I -B -c HARNESS program.py`) that receives a fresh random token on fd 4 (in no file,
//    argument or environment variable), closes it, runs the program's code, and writes the token to fd 5
//    only when that code returned, i.e. every statement (every assertion) ran. sys.exit(0), os._exit(0),
//    an atexit hook, a signal, closing stdout or monkey-patching cannot produce it; an audit hook keeps
//    the program from reading it (the harness's frame code, raw memory via ctypes or /proc, gc
//    traversal, tracing that skips lines, other programs, subinterpreters; see sandbox.cpp). passed =
//    exit status 0 and the token seen, within every limit.
//  - bwrap --unshare-user/net/pid/ipc/uts (+cgroup when possible), --disable-userns, --die-with-parent,
//    --new-session; only what the interpreter needs is mounted, read-only: /usr (and the root-level
//    links into it), the interpreter's prefix when outside /usr, a minimal /etc (loader cache, time
//    zone); nothing of the data root, run directories or home. Minimal read-only /dev, fresh /proc;
//    /tmp is a private, size-capped tmpfs and the program's own (initially empty) working directory,
//    the only writable path; the program itself is a read-only file in it. No network (empty network
//    namespace).
//  - rlimits: CPU seconds, address space, file size, open files, processes, no core files.
//  - When the evaluator runs as root, each running program gets its own unprivileged uid
//    (1e9 + 256 * (pid % 4e6) + slot): RLIMIT_NPROC is not enforced for root, and a private uid also
//    lets the evaluator kill everything the program left behind (kill(-1) as that uid). A uid is
//    handed out only while no process of it exists, zombies included (zombies count against
//    RLIMIT_NPROC).
//  - Every program runs under its own supervisor process, a child of the evaluator and a
//    subreaper (PR_SET_CHILD_SUBREAPER): whatever the sandbox orphans (bubblewrap's own pid-1 outlives
//    the outer bwrap) is reparented to it, not to the machine's PID 1. Once the program has ended it
//    kills and reaps every remaining descendant and only then exits, so nothing of a sample survives
//    it and the result never depends on how fast PID 1 reaps.
//  - Time: the wall-clock timeout counts from the moment the program itself starts (sandbox set-up
//    has its own, generous limit, whose overrun is an "error", not a failed program). At the deadline
//    a program that is waiting (sleeping, blocked: under 5% of a core over the last second) is
//    stopped ("timeout"); one still computing goes on until its CPU time reaches cpu_seconds
//    ("cpu_limit": RLIMIT_CPU per process, the sample's total CPU for all of them), so load on the
//    machine, which stretches wall time but not CPU time, does not turn slow programs into failures.
//  - stdout+stderr are read as they come and the program is killed once they exceed the output cap;
//    the host temp dir holding the program is removed afterwards.
// When bubblewrap is missing or fails its self-test, the Sandbox refuses to run anything unless
// unsafe_exec is set (then programs run under the same rlimits/uid but without namespaces, and a
// warning is logged).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lopa {

struct SandboxLimits {
  double wall_seconds = 10.0;                  // wall clock from the program's start (see Time above)
  double setup_seconds = 60.0;                 // sandbox set-up before the program starts (beyond: "error")
  int64_t cpu_seconds = 10;                    // RLIMIT_CPU per process (guards against busy loops)
  int64_t address_space_bytes = 2LL << 30;     // RLIMIT_AS per process
  int64_t file_size_bytes = 16LL << 20;        // RLIMIT_FSIZE
  int64_t open_files = 64;                     // RLIMIT_NOFILE
  int64_t processes = 32;                      // RLIMIT_NPROC for the program's uid (bwrap's 2 included)
  int64_t output_bytes = 1LL << 20;            // stdout + stderr; beyond this the program is killed (failed)
  int64_t capture_bytes = 64LL << 10;          // how much of each stream is kept in ExecResult
  int64_t tmpfs_bytes = 64LL << 20;            // size of the private /tmp
};

struct SandboxOptions {
  SandboxLimits limits;
  bool unsafe_exec = false;                 // allow running without a sandbox when none can be created
  int workers = 0;                          // parallel programs in run_all; 0 = number of cores
  std::string python = "/usr/bin/python3";
  std::string bwrap = "/usr/bin/bwrap";
};

struct ExecResult {
  bool passed = false;      // exited normally with status 0 and proven (below), within every limit
  // "passed"; "failed" (non-zero exit, or exit 0 without the harness's proof; under bubblewrap a program
  // killed by signal N exits 128+N);
  // "signal" (killed by a signal, without bubblewrap); "cpu_limit" (out of CPU time); "timeout" (still
  // waiting at the wall-clock deadline); "output_limit"; "error" (the sandbox could not start it).
  std::string status;
  bool proven = false;      // the harness reported that the program's last statement ran (its token)
  int exit_code = -1;       // when exited normally
  int term_signal = 0;      // when killed by a signal
  std::string out, err;     // captured stdout / stderr (at most capture_bytes each)
  bool truncated = false;   // some output was not kept
  double wall_seconds = 0;  // from the program's start to its end (sandbox set-up excluded)
  double cpu_seconds = 0;   // user + system CPU of every process of the sample (bubblewrap's included)
  double setup_seconds = 0; // from the launch to the program's start
};

// The uids [first, first + count) this process gives to the programs it runs as root.
std::pair<uint32_t, uint32_t> sandbox_uid_range();

class Sandbox {
 public:
  // Checks bubblewrap with a self-test program; throws lopa::Error when it is unusable and
  // !opts.unsafe_exec.
  explicit Sandbox(SandboxOptions opts = {});

  bool sandboxed() const { return sandboxed_; }
  const std::string& description() const { return description_; }
  int workers() const { return workers_; }
  const SandboxOptions& options() const { return opts_; }

  // Runs one program (Python source) and waits for it and everything it started; thread-safe.
  ExecResult run(const std::string& program) const;
  // Runs every program on workers() threads; results in input order.
  std::vector<ExecResult> run_all(const std::vector<std::string>& programs) const;

 private:
  ExecResult run_mode(const std::string& program, bool use_bwrap) const;

  SandboxOptions opts_;
  std::vector<std::string> mounts_;  // bwrap arguments mounting the interpreter (interpreter_mounts)
  bool sandboxed_ = false;
  std::string description_;
  int workers_ = 1;
};

}  // namespace lopa
