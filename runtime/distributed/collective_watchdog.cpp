#include "runtime/distributed/collective_watchdog.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "runtime/base/error.h"

namespace lopa {

CollectiveWatchdog::CollectiveWatchdog(double timeout_s, int world_rank)
    : timeout_s_(timeout_s), world_rank_(world_rank) {
  LOPA_CHECK(timeout_s > 0, "collective watchdog: timeout must be positive, got ", timeout_s);
  thread_ = std::thread([this] { loop(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<CollectiveWatchdog> CollectiveWatchdog::from_env(int world_rank) {
  const char* v = std::getenv("LOPA_COLLECTIVE_TIMEOUT_S");
  if (!v || !*v) return nullptr;
  char* end = nullptr;
  const double t = std::strtod(v, &end);
  LOPA_CHECK(*end == '\0' && t >= 0, "LOPA_COLLECTIVE_TIMEOUT_S='", v, "' is not a number of seconds >= 0");
  if (t == 0) return nullptr;
  return std::make_shared<CollectiveWatchdog>(t, world_rank);
}

void CollectiveWatchdog::loop() {
  const auto period = std::chrono::duration<double>(std::min(1.0, timeout_s_ / 4));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, period);
    if (stop_ || !armed_) continue;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
    if (waited < timeout_s_) continue;
    // Not MPI_Abort: MPI runs FUNNELED, so only the main thread may call it. Exiting without
    // MPI_Finalize makes mpirun/srun terminate every other rank.
    std::fprintf(stderr, "rank %d: %s did not complete within %.0f s (another rank failed, hangs, or skipped it); aborting the job\n",
                 world_rank_, what_.c_str(), timeout_s_);
    std::fflush(stderr);
    std::_Exit(1);
  }
}

CollectiveWatchdog::Scope::Scope(CollectiveWatchdog* w, const char* op, const std::string& group) : w_(w) {
  if (!w_) return;
  std::lock_guard<std::mutex> lock(w_->mu_);
  if (w_->armed_) return;
  w_->armed_ = armed_ = true;
  w_->what_ = str(op, " on the ", group, " group");
  w_->since_ = std::chrono::steady_clock::now();
}

CollectiveWatchdog::Scope::~Scope() {
  if (!armed_) return;
  std::lock_guard<std::mutex> lock(w_->mu_);
  w_->armed_ = false;
}

}  // namespace lopa
