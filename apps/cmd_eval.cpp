// lopa eval --run RUN_DIR [--split NAME]: evaluates a trained run's adapter, writes predictions.jsonl,
// records the metrics in its HDF5 log and prints them as JSON.
#include <string>

#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/trainer.h"
#include "runtime/error.h"
#include "runtime/failure.h"
#include "runtime/mpi_runtime.h"

namespace lopa::app {

int cmd_eval(const Args& args) {
  po::options_description desc("Options");
  desc.add_options()("run", po::value<std::string>(), "run directory written by lopa train (required)")(
      "split", po::value<std::string>()->default_value(""), "split to evaluate (default: the task's reported split)")(
      "device", po::value<std::string>()->default_value(""), "override the run's device (auto, cpu, cuda, cuda:N)");
  auto parsed = parse_options("eval", "--run RUN_DIR [--split NAME]", desc, args, /*allow_config=*/false);
  if (parsed.help) return 0;
  auto& vm = parsed.vm;
  LOPA_CHECK(vm.count("run"), "lopa eval: --run RUN_DIR is required");
  const auto run = vm["run"].as<std::string>(), split = vm["split"].as<std::string>(),
             device = vm["device"].as<std::string>();
  MpiRuntime mpi(MpiRuntime::Mode::IfLaunched);
  return run_rank([&] { return run_evaluation(run, split, device); });
}

}  // namespace lopa::app
