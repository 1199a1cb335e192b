// `lopa init-model`: a randomly initialised Hugging Face checkpoint of any supported architecture.
#include <iostream>

#include "apps/commands.h"
#include "apps/options.h"
#include "runtime/model/init_model.h"
#include "runtime/model/architecture.h"

namespace lopa::app {

int cmd_init_model(const Args& args) {
  po::options_description desc("init-model");
  desc.add_options()
      ("out", po::value<std::string>()->required(), "output checkpoint directory")
      ("tokenizer", po::value<std::string>()->default_value(""), "directory whose tokenizer files are copied")
      ("seed", po::value<uint64_t>()->default_value(0), "initialisation seed");
  // --config is the model's config.json here (not an INI file of options).
  po::options_description all("init-model");
  all.add_options()("config", po::value<std::string>()->required(), "Hugging Face config.json of the model to make");
  all.add(desc);
  auto opts = parse_options("init-model", "--config config.json --out DIR [--tokenizer DIR] [--seed S]", all, args,
                            /*allow_config=*/false);
  if (opts.help) return 0;
  const auto& vm = opts.vm;
  const auto cfg_path = vm["config"].as<std::string>(), out = vm["out"].as<std::string>();
  init_model(cfg_path, out, vm["tokenizer"].as<std::string>(), vm["seed"].as<uint64_t>());
  const auto arch = load_architecture(out + "/config.json");
  std::cout << out << ": " << arch->config().architecture << " with "
            << num_parameters(tensor_table(arch->spec(), arch->config())) << " parameters" << std::endl;
  return 0;
}

}  // namespace lopa::app
