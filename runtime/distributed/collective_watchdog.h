// CollectiveWatchdog: a thread that ends this process when one collective has been waiting longer
// than a timeout (another rank died, hangs, or took a different code path). The launcher then sees
// a rank exit without MPI_Finalize and takes the whole job down, so a mismatch never hangs forever.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace lopa {

class CollectiveWatchdog {
 public:
  CollectiveWatchdog(double timeout_s, int world_rank);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // LOPA_COLLECTIVE_TIMEOUT_S seconds (a positive number), or nullptr when unset or 0 (no watchdog).
  static std::shared_ptr<CollectiveWatchdog> from_env(int world_rank);

  // Arms the watchdog for one collective for as long as it lives; nested scopes keep the outer one.
  class Scope {
   public:
    Scope(CollectiveWatchdog* w, const char* op, const std::string& group);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    CollectiveWatchdog* w_;
    bool armed_ = false;
  };

  double timeout_s() const { return timeout_s_; }

 private:
  void loop();

  const double timeout_s_;
  const int world_rank_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool armed_ = false;
  std::string what_;  // "all_reduce on the tp group"
  std::chrono::steady_clock::time_point since_;
  std::thread thread_;
};

}  // namespace lopa
