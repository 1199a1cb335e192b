// lopa eval --run RUN_DIR [--split NAME] [--details FILE]: evaluates a trained run's adapter, writes
// predictions.jsonl (and per-sample sandbox results for code tasks), records the metrics in its HDF5
// log and prints them as JSON (code tasks: passed_samples, failed, timeouts, errors).
#include <string>

#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/train/trainer.h"
#include "runtime/base/error.h"
#include "runtime/distributed/failure.h"
#include "runtime/distributed/mpi_runtime.h"

namespace lopa::app {

int cmd_eval(const Args& args) {
  po::options_description desc("Options");
  desc.add_options()("run", po::value<std::string>(), "run directory written by lopa train (required)")(
      "split", po::value<std::string>()->default_value(""), "split to evaluate (default: the task's reported split)")(
      "device", po::value<std::string>()->default_value(""), "override the run's device (auto, cpu, cuda, cuda:N)")(
      "details", po::value<std::string>()->default_value(""),
      "code tasks: write per-sample results to FILE (JSON lines: id, status, exit_code, wall_seconds, "
      "cpu_seconds, first lines of stderr)");
  auto parsed =
      parse_options("eval", "--run RUN_DIR [--split NAME] [--details FILE]", desc, args, /*allow_config=*/false);
  if (parsed.help) return 0;
  auto& vm = parsed.vm;
  LOPA_CHECK(vm.count("run"), "lopa eval: --run RUN_DIR is required");
  const auto run = vm["run"].as<std::string>(), split = vm["split"].as<std::string>(),
             device = vm["device"].as<std::string>(), details = vm["details"].as<std::string>();
  MpiRuntime mpi(MpiRuntime::Mode::IfLaunched);
  return run_rank([&] { return run_evaluation(run, split, device, details); });
}

}  // namespace lopa::app
