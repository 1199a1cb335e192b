// Logging cost alone: appends of one training step (6 fields) per second through RunLog, with the
// default flush policy (publish every 10 s) and with a flush every 1,000 steps, each including the
// final flush at close; plus the cost of one flush (atomic snapshot) as the log grows.
// Rates are given per wall-clock second and per CPU second of this process (user + system), since the
// shared build machine is often oversubscribed and wall time then measures the other tenants.
// Usage: bench_runlog [steps=1000000] [dir=/tmp]
#include <sys/resource.h>
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

static double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct Rate {
  double wall, cpu;
};

static Rate appends_per_s(const std::string& path, int64_t steps, FlushPolicy policy) {
  RunInfo info;
  info.method = "lopa";
  info.task = "sst2";
  info.config_json = R"({"method":"lopa","lr":0.001})";
  const auto t0 = clk::now();
  const double c0 = cpu_seconds();
  {
    auto log = RunLog::create(path, info, policy);
    for (int64_t i = 0; i < steps; ++i) log.log_train(i, 1.0 / (i + 1), 1e-3, 0.5, 12345.0, i * 0.01);
    log.set_status_completed();
  }
  return {steps / seconds_since(t0), steps / (cpu_seconds() - c0)};
}

int main(int argc, char** argv) {
  const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 1000000;
  const std::string dir = argc > 2 ? argv[2] : "/tmp";
  const std::string path = dir + "/bench_runlog_" + std::to_string(::getpid()) + ".h5";

  FlushPolicy every_10s;  // default
  FlushPolicy every_1000;
  every_1000.every_steps = 1000;
  every_1000.every_seconds = 0;
  FlushPolicy at_close;  // buffer only: the raw cost of an append plus one flush at the end
  at_close.every_seconds = 0;
  const Rate a = appends_per_s(path, steps, every_10s);
  const Rate c = appends_per_s(path, steps, at_close);
  const Rate b = appends_per_s(path, std::min<int64_t>(steps, 100000), every_1000);
  std::printf("{\"bench\": \"runlog\", \"steps\": %lld, \"target_appends_per_s\": 50000, \"file_bytes\": %lld,\n"
              " \"default_policy_10s\": {\"appends_per_wall_s\": %.0f, \"appends_per_cpu_s\": %.0f},\n"
              " \"flush_at_close_only\": {\"appends_per_wall_s\": %.0f, \"appends_per_cpu_s\": %.0f},\n"
              " \"flush_every_1000_steps\": {\"steps\": %lld, \"appends_per_wall_s\": %.0f, \"appends_per_cpu_s\": %.0f}}\n",
              static_cast<long long>(steps), static_cast<long long>(std::filesystem::file_size(path)), a.wall, a.cpu,
              c.wall, c.cpu, static_cast<long long>(std::min<int64_t>(steps, 100000)), b.wall, b.cpu);

  // One flush with n points already in the file: cost of the snapshot that every eval pays.
  for (int64_t n : {1000, 100000, 1000000}) {
    RunInfo info;
    auto log = RunLog::create(path, info, FlushPolicy{0, 0});
    for (int64_t i = 0; i < n; ++i) log.log_train(i, 1, 1, 1, 1, 1);
    log.flush();
    const auto t0 = clk::now();
    const double c0 = cpu_seconds();
    const int reps = 10;
    for (int k = 0; k < reps; ++k) log.log_eval(n + k, {{"accuracy", 0.5}});
    std::printf("{\"bench\": \"runlog_flush\", \"points_in_file\": %lld, \"wall_ms_per_eval_flush\": %.3f, "
                "\"cpu_ms_per_eval_flush\": %.3f}\n",
                static_cast<long long>(n), 1e3 * seconds_since(t0) / reps, 1e3 * (cpu_seconds() - c0) / reps);
  }
  std::filesystem::remove(path);
  return 0;
}
