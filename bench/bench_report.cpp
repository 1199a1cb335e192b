// Generates N completed runs (metrics.h5 under ROOT/<id>/) the way a sweep would, then times the
// report in-process (read + aggregate + format). bench_report.sh times `lopa report` on the same runs.
// Usage: bench_report ROOT [runs=1000] [train_steps=500]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "results/report.h"
#include "results/run_log.h"

using namespace lopa::results;
namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_report ROOT [runs=1000] [train_steps=500]\n");
    return 2;
  }
  const fs::path root = argv[1];
  const int runs = argc > 2 ? std::atoi(argv[2]) : 1000;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 500;
  const char* methods[] = {"lopa", "pt", "idpg", "lora", "fft"};
  const char* tasks[] = {"sst2", "rte", "mrpc", "qnli"};
  const char* models[] = {"stories260K", "glue-lm-8M"};
  const int ms[] = {5, 10, 20, 40};

  const auto t0 = clk::now();
  for (int i = 0; i < runs; ++i) {
    // 5 methods x 4 tasks x 2 models x 4 m x ... seeds: i enumerates the grid, seeds vary fastest.
    const int seed = i % 5, rest = i / 5;
    const std::string method = methods[rest % 5], task = tasks[(rest / 5) % 4], model = models[(rest / 20) % 2];
    const int m = ms[(rest / 40) % 4];
    nlohmann::json cfg = {{"method", method}, {"task", task}, {"model", model}, {"seed", seed}, {"lr", 1e-3}};
    if (method != "lora" && method != "fft") cfg["num-virtual-tokens"] = m;
    if (method == "lopa" || method == "lora") cfg["rank"] = 4;
    RunInfo info;
    info.method = method;
    info.task = task;
    info.model = "../shared/models/" + model;
    info.seed = seed;
    info.config_json = cfg.dump();
    info.trainable_params = 1000 * (rest % 7 + 1);
    const fs::path dir = root / ("run" + std::to_string(i));
    fs::create_directories(dir);
    auto log = RunLog::create((dir / "metrics.h5").string(), info);
    for (int s = 0; s < steps; ++s) log.log_train(s, 2.0 / (s + 1), 1e-3, 1, 1000, s);
    for (int e = 1; e <= 5; ++e)
      log.log_eval(e * steps / 5, {{"accuracy", 0.5 + 0.01 * e + 0.001 * seed}, {"f1", 0.4 + 0.01 * e}, {"loss", 1.0 / e}});
    log.set_status_completed();
  }
  const double gen_s = std::chrono::duration<double>(clk::now() - t0).count();

  const auto t1 = clk::now();
  const Report rep = build_report(root.string(), {});
  const std::string md = format_report(rep, "md");
  const double report_s = std::chrono::duration<double>(clk::now() - t1).count();
  std::printf("{\"bench\": \"report\", \"runs\": %d, \"train_steps\": %d, \"generate_s\": %.2f, "
              "\"report_in_process_s\": %.3f, \"runs_used\": %d, \"rows\": %zu, \"cols\": %zu, \"target_s\": 10}\n",
              runs, steps, gen_s, report_s, rep.runs_used, rep.rows.size(), rep.cols.size());
  return 0;
}
