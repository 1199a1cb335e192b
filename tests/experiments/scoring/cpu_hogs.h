// CpuHogs: CPU-bound processes beside a test (one per core while alive), a machine busy with another
// job. Forked children that only spin, killed and reaped on destruction.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace lopa::test {

struct CpuHogs {
  CpuHogs() {
    const unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      const pid_t p = fork();
      if (p == 0) {
        for (volatile uint64_t x = 0;; x = x + 1) {
        }
      }
      if (p > 0) pids.push_back(p);
    }
  }
  ~CpuHogs() {
    for (pid_t p : pids) kill(p, SIGKILL);
    for (pid_t p : pids) waitpid(p, nullptr, 0);
  }
  CpuHogs(const CpuHogs&) = delete;
  CpuHogs& operator=(const CpuHogs&) = delete;
  std::vector<pid_t> pids;
};

}  // namespace lopa::test
