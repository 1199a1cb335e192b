#include "runtime/distributed/failure.h"

#include <mpi.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <thread>

#include "runtime/base/error.h"
#include "runtime/distributed/mpi_runtime.h"
#include "runtime/distributed/process_group.h"

namespace lopa {

namespace {
// World rank and size, or (0, 1) without MPI.
std::pair<int, int> world_position() {
  if (!MpiRuntime::initialized()) return {0, 1};
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return {rank, size};
}
}  // namespace

void abort_job(const std::string& what) {
  const auto [rank, size] = world_position();
  // One write: std::cerr is unbuffered, and mpirun forwards each write on its own, so a line written
  // piecewise can come out split by the launcher's own MPI_ABORT banner.
  std::cerr << str("rank ", rank, ": ", what, "\n") << std::flush;
  if (MpiRuntime::initialized() && size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  std::exit(1);
}

int run_rank(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    if (world_position().second > 1) abort_job(e.what());
    throw;
  }
}

namespace {
constexpr int kWatchedSignals[] = {SIGTERM, SIGINT, SIGHUP};
int g_watch_pipe = -1;  // write end, read by the watcher thread

extern "C" void on_termination_signal(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  if (g_watch_pipe >= 0 && ::write(g_watch_pipe, &b, 1) < 0) {
  }
  errno = saved;
}
}  // namespace

struct TerminationWatch::Impl {
  std::function<void(int)> hook;
  int fds[2] = {-1, -1};
  struct sigaction old[3];
  std::thread thread;
};

TerminationWatch::TerminationWatch(std::function<void(int)> hook) : impl_(new Impl) {
  LOPA_CHECK(g_watch_pipe < 0, "TerminationWatch: one at a time");
  impl_->hook = std::move(hook);
  LOPA_CHECK(::pipe2(impl_->fds, O_CLOEXEC) == 0, "TerminationWatch: pipe: ", std::strerror(errno));
  g_watch_pipe = impl_->fds[1];
  Impl* m = impl_;
  m->thread = std::thread([m] {
    unsigned char b = 0;
    ssize_t n;
    while ((n = ::read(m->fds[0], &b, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1 || b == 0) return;  // closed or stopped by the destructor
    const int sig = b;
    try {
      m->hook(sig);
    } catch (const std::exception& e) {
      std::cerr << "lopa: warning: while ending on signal " << sig << ": " << e.what() << std::endl;
    }
    // End as the signal would have: its default action, re-raised.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(sig, &dfl, nullptr);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(sig);
    std::_Exit(128 + sig);
  });
  struct sigaction sa {};
  sa.sa_handler = on_termination_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < 3; ++i) ::sigaction(kWatchedSignals[i], &sa, &impl_->old[i]);
}

TerminationWatch::~TerminationWatch() {
  for (int i = 0; i < 3; ++i) ::sigaction(kWatchedSignals[i], &impl_->old[i], nullptr);
  const unsigned char stop = 0;
  if (::write(impl_->fds[1], &stop, 1) < 0) {
  }
  impl_->thread.join();
  g_watch_pipe = -1;
  ::close(impl_->fds[0]);
  ::close(impl_->fds[1]);
  delete impl_;
}

uint64_t fingerprint(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

void agree_on_failure(const ProcessGroup& pg, const std::string& error, const std::string& what) {
  if (pg.world_size == 1) {
    if (!error.empty()) throw AgreedError(error);
    return;
  }
  const at::Tensor mine = at::full({1}, error.empty() ? 0 : 1, at::kLong);
  const at::Tensor all = pg.world->all_gather(mine, 0);  // [world_size]
  const auto* f = all.data_ptr<int64_t>();
  std::string failed;
  int n = 0;
  for (int r = 0; r < pg.world_size; ++r)
    if (f[r] != 0) failed += (n++ ? ", " : "") + std::to_string(r);
  if (n == 0) return;
  if (!error.empty()) throw AgreedError(error);
  throw AgreedError(str(what, ": ", n == 1 ? "rank " : "ranks ", failed, " failed (its message is on its stderr)"));
}

void check_same_config(const ProcessGroup& pg, const std::string& config) {
  if (pg.world_size == 1) return;
  at::Tensor mine = at::full({1}, static_cast<int64_t>(fingerprint(config)), at::kLong);
  const at::Tensor all = pg.world->all_gather(mine, 0);  // [world_size]
  const auto* h = all.data_ptr<int64_t>();
  std::string differ;
  int n = 0;
  for (int r = 1; r < pg.world_size; ++r) {
    if (h[r] == h[0]) continue;
    differ += (n++ ? ", " : "") + std::to_string(r);
  }
  LOPA_CHECK(n == 0, n == 1 ? "rank " : "ranks ", differ, " started with a configuration different from rank 0's ",
             "(fingerprints differ): every rank must get the same options");
}

}  // namespace lopa
