// `lopa serve`: one frozen FM serving many tasks and methods in one continuously batched decode over
// an OpenAI-compatible HTTP API (serve/server.h; the contract is in docs/DESIGN.md).
#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/eval/adapter_generation.h"
#include "runtime/base/error.h"
#include "runtime/io/dtype.h"
#include "serve/server.h"

namespace lopa::app {

int cmd_serve(const Args& args) {
  po::options_description desc("serve");
  desc.add_options()
      ("model", po::value<std::string>(), "Hugging Face checkpoint directory of the frozen FM (config.json, weights, tokenizer.json); default: the first adapter run's model")
      ("adapter", po::value<std::vector<std::string>>()->composing(), "NAME=RUN_DIR: a trained run (pt, idpg, lopa, lora, prefix) of this FM, requested as \"adapter\": NAME or \"model\": NAME; repeatable")
      ("host", po::value<std::string>()->default_value("127.0.0.1"), "address to listen on (loopback by default)")
      ("port", po::value<int>()->default_value(8000), "TCP port; 0 picks a free one (printed)")
      ("max-batch", po::value<int64_t>()->default_value(8), "sequences decoded together at most; more requests wait for a slot")
      ("max-tokens", po::value<int64_t>()->default_value(0), "largest max_tokens a request may ask; 0: the model's context length")
      ("dtype", po::value<std::string>()->default_value("float32"), "run dtype: float32, bfloat16, float16")
      ("tp", po::value<int>()->default_value(1), "tensor-parallel ranks (under mpirun -np N)");
  auto opts = parse_options("serve", "--model DIR [--adapter NAME=RUN_DIR ...] [--host H] [--port P] [--max-batch N]", desc, args);
  if (opts.help) return 0;
  const auto& vm = opts.vm;
  serve::ServeOptions o;
  if (vm.count("adapter"))
    for (const auto& a : vm["adapter"].as<std::vector<std::string>>()) o.adapters.push_back(serve::parse_adapter_arg(a));
  LOPA_CHECK(vm.count("model") || !o.adapters.empty(), "--model is required (or an --adapter, whose run's model is used)");
  o.model = vm.count("model") ? vm["model"].as<std::string>() : read_run_config(o.adapters[0].second).model;
  o.host = vm["host"].as<std::string>();
  o.port = vm["port"].as<int>();
  o.max_batch = vm["max-batch"].as<int64_t>();
  o.max_tokens = vm["max-tokens"].as<int64_t>();
  o.tp = vm["tp"].as<int>();
  o.dtype = parse_dtype(vm["dtype"].as<std::string>(), "--dtype");
  LOPA_CHECK(o.max_batch >= 1, "--max-batch must be at least 1");
  LOPA_CHECK(o.max_tokens >= 0, "--max-tokens must be >= 0");
  return serve::serve(o);
}

}  // namespace lopa::app
