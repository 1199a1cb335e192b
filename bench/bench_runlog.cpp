// Logging cost alone: appends of one training step (6 fields) per second through RunLog, with the
// default flush policy (publish every 10 s) and with a flush every 1,000 steps, each including the
// final flush at close; plus the cost of one flush (atomic snapshot) as the log grows.
// Usage: bench_runlog [steps=2000000] [dir=/tmp]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "results/run_log.h"

using namespace lopa::results;
using clk = std::chrono::steady_clock;

static double seconds_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

static double appends_per_s(const std::string& path, int64_t steps, FlushPolicy policy) {
  RunInfo info;
  info.method = "lopa";
  info.task = "sst2";
  info.config_json = R"({"method":"lopa","lr":0.001})";
  const auto t0 = clk::now();
  {
    auto log = RunLog::create(path, info, policy);
    for (int64_t i = 0; i < steps; ++i) log.log_train(i, 1.0 / (i + 1), 1e-3, 0.5, 12345.0, i * 0.01);
    log.set_status_completed();
  }
  return steps / seconds_since(t0);
}

int main(int argc, char** argv) {
  const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 2000000;
  const std::string dir = argc > 2 ? argv[2] : "/tmp";
  const std::string path = dir + "/bench_runlog_" + std::to_string(::getpid()) + ".h5";

  FlushPolicy every_10s;  // default
  FlushPolicy every_1000;
  every_1000.every_steps = 1000;
  every_1000.every_seconds = 0;
  const double a = appends_per_s(path, steps, every_10s);
  const double b = appends_per_s(path, std::min<int64_t>(steps, 200000), every_1000);
  std::printf("{\"bench\": \"runlog\", \"steps\": %lld, \"appends_per_s_default_policy\": %.0f, "
              "\"appends_per_s_flush_every_1000\": %.0f, \"target\": 50000, \"file_bytes\": %lld}\n",
              static_cast<long long>(steps), a, b, static_cast<long long>(std::filesystem::file_size(path)));

  // One flush with n points already in the file: cost of the snapshot that every eval pays.
  for (int64_t n : {1000, 100000, 1000000}) {
    RunInfo info;
    auto log = RunLog::create(path, info, FlushPolicy{0, 0});
    for (int64_t i = 0; i < n; ++i) log.log_train(i, 1, 1, 1, 1, 1);
    log.flush();
    const auto t0 = clk::now();
    const int reps = 20;
    for (int k = 0; k < reps; ++k) log.log_eval(n + k, {{"accuracy", 0.5}});
    std::printf("{\"bench\": \"runlog_flush\", \"points_in_file\": %lld, \"ms_per_eval_flush\": %.3f}\n",
                static_cast<long long>(n), 1e3 * seconds_since(t0) / reps);
  }
  std::filesystem::remove(path);
  return 0;
}
