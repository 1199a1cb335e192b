// `lopa prompt`: the soft prompt a trained PT / IDPG / LoPA run gives a text, printed as the JSON fields
// a `lopa serve` request takes ("soft_prompt": base64 float32 m × d, its shape and dtype), so a client
// can serve its task on a server that holds nothing of it.
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/eval/adapter_generation.h"
#include "runtime/base/error.h"
#include "runtime/distributed/process_group.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"
#include "serve/adapters.h"
#include "serve/soft_prompt_codec.h"

namespace lopa::app {

int cmd_prompt(const Args& args) {
  po::options_description desc("prompt");
  desc.add_options()
      ("adapter", po::value<std::string>(), "a lopa run directory of a soft-prompt method (pt, idpg, lopa)")
      ("text", po::value<std::string>(), "the prompt text (LoPA and IDPG compute the soft prompt from it; tokenized as `lopa generate --prompt`)")
      ("model", po::value<std::string>(), "the FM directory; default: the run's model");
  auto opts = parse_options("prompt", "--adapter RUN_DIR --text STR", desc, args);
  if (opts.help) return 0;
  const auto& vm = opts.vm;
  LOPA_CHECK(vm.count("adapter"), "--adapter RUN_DIR is required");
  LOPA_CHECK(vm.count("text"), "--text is required");
  const auto run_dir = vm["adapter"].as<std::string>();
  const auto cfg = read_run_config(run_dir);
  LOPA_CHECK(cfg.method == "pt" || cfg.method == "idpg" || cfg.method == "lopa", "--adapter ", run_dir, ": a ", cfg.method,
             " run has no soft prompt (it changes the FM: register it with `lopa serve --adapter NAME=", run_dir, "`)");
  const auto dir = vm.count("model") ? vm["model"].as<std::string>() : cfg.model;
  const auto tok = Tokenizer::from_dir(dir);
  auto fm = CausalLM::load(dir, ProcessGroup::single());
  serve::AdapterSet set(fm, tok);
  const auto& a = set.add("run", run_dir);
  const auto ids = tok.encode(vm["text"].as<std::string>(), /*add_special_tokens=*/true);
  LOPA_CHECK(!ids.empty(), "--text: empty after tokenization");
  const auto z = set.soft_prompt(a, ids);
  nlohmann::ordered_json j;
  j["soft_prompt"] = serve::encode_soft_prompt(z);
  j["soft_prompt_shape"] = {z.size(1), z.size(2)};
  j["soft_prompt_dtype"] = "float32";
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace lopa::app
