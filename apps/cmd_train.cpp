// lopa train --config FILE [--KEY VALUE ...] --out RUN_DIR: trains one cell (any world size under
// mpirun/srun); resumes when RUN_DIR holds a checkpoint; exits 75 after a SIGUSR1 checkpoint.
#include <map>
#include <string>

#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/tasks/train_config.h"
#include "experiments/train/trainer.h"
#include "runtime/base/error.h"
#include "runtime/distributed/failure.h"
#include "runtime/distributed/mpi_runtime.h"

namespace lopa::app {

int cmd_train(const Args& args) {
  po::options_description desc("Training keys (also accepted as KEY = VALUE lines of --config)");
  desc.add_options()("out", po::value<std::string>(), "run directory (required)");
  for (const auto& k : train_config_keys())
    desc.add_options()(k.name, po::value<std::string>()->default_value(k.default_value), k.help);
  auto parsed = parse_options("train", "--config FILE [--KEY VALUE ...] --out RUN_DIR", desc, args);
  if (parsed.help) return 0;
  auto& vm = parsed.vm;
  if (vm.count("config")) TrainConfig::check_config_file(vm["config"].as<std::string>());
  LOPA_CHECK(vm.count("out"), "lopa train: --out RUN_DIR is required");
  std::map<std::string, std::string> kv;
  for (const auto& k : train_config_keys()) kv[k.name] = vm[k.name].as<std::string>();
  const auto out = vm["out"].as<std::string>();
  install_checkpoint_signal();
  MpiRuntime mpi(MpiRuntime::Mode::IfLaunched);
  return run_rank([&] { return run_training(kv, out); });
}

}  // namespace lopa::app
