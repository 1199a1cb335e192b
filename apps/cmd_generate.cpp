// `lopa generate`: text generation from a Hugging Face checkpoint with the KV-cached runtime.
// Greedy when --temperature is 0 (default); BOS is added when the tokenizer config asks for it. With
// --adapter RUN_DIR the run's trained method is applied throughout KV-cached decoding.
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/eval/adapter_generation.h"
#include "runtime/io/dtype.h"
#include "runtime/base/error.h"
#include "runtime/model/generation.h"
#include "runtime/model/causal_lm.h"
#include "runtime/distributed/mpi_runtime.h"
#include "runtime/distributed/process_group.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa::app {

int cmd_generate(const Args& args) {
  po::options_description desc("generate");
  desc.add_options()
      ("model", po::value<std::string>(), "Hugging Face checkpoint directory (config.json, safetensors, tokenizer.json); default with --adapter: the run's model")
      ("prompt", po::value<std::string>(), "prompt text")
      ("prompt-ids", po::value<std::string>(), "prompt as token ids, e.g. 1,2,3 (instead of --prompt; no tokenizer needed)")
      ("max-new-tokens", po::value<int64_t>()->default_value(64), "tokens to generate at most")
      ("temperature", po::value<double>()->default_value(0.0), "sampling temperature; 0 = greedy")
      ("top-p", po::value<double>()->default_value(1.0), "nucleus sampling threshold (with temperature > 0)")
      ("seed", po::value<uint64_t>()->default_value(0), "sampling seed")
      ("dtype", po::value<std::string>()->default_value("float32"), "run dtype: float32, bfloat16, float16")
      ("tp", po::value<int>()->default_value(1), "tensor-parallel ranks (run under mpirun -np <multiple of tp>)")
      ("adapter", po::value<std::string>(), "a lopa run directory: generate with its trained method (LoPA, PT, IDPG, LoRA, prefix, FFT)")
      ("json", po::bool_switch(), "print {\"prompt_ids\", \"generated_ids\", \"text\"} as one JSON line");
  auto opts = parse_options("generate", "--model DIR (--prompt STR | --prompt-ids 1,2,3) [--adapter RUN_DIR] [options]", desc, args);
  if (opts.help) return 0;
  const auto& vm = opts.vm;
  const std::string adapter = vm.count("adapter") ? vm["adapter"].as<std::string>() : "";
  LOPA_CHECK(vm.count("model") || !adapter.empty(), "--model is required (or --adapter RUN_DIR, whose model is used)");
  const auto dir = vm.count("model") ? vm["model"].as<std::string>() : read_run_config(adapter).model;
  GenerationConfig gc;
  gc.max_new_tokens = vm["max-new-tokens"].as<int64_t>();
  gc.temperature = vm["temperature"].as<double>();
  gc.top_p = vm["top-p"].as<double>();
  gc.seed = vm["seed"].as<uint64_t>();
  LOPA_CHECK(gc.max_new_tokens >= 0, "--max-new-tokens must be >= 0");
  LOPA_CHECK(gc.temperature >= 0, "--temperature must be >= 0");
  LOPA_CHECK(gc.top_p > 0 && gc.top_p <= 1, "--top-p must be in (0, 1]");
  const auto dtype = parse_dtype(vm["dtype"].as<std::string>(), "--dtype");

  LOPA_CHECK(vm.count("prompt") + vm.count("prompt-ids") == 1, "give exactly one of --prompt and --prompt-ids");
  // Token ids need no tokenizer: a checkpoint without tokenizer files generates ids.
  std::optional<Tokenizer> tok;
  if (vm.count("prompt") || Tokenizer::available(dir) || !adapter.empty()) tok = Tokenizer::from_dir(dir);
  MpiRuntime mpi;  // initialises MPI only under mpirun/srun; one process stays MPI-free
  const auto pg = ProcessGroup::init(vm["tp"].as<int>(), "cpu");
  auto model = CausalLM::load(dir, pg, dtype);
  const std::string prompt = vm.count("prompt") ? vm["prompt"].as<std::string>() : "";
  const auto prompt_ids = vm.count("prompt") ? tok->encode(prompt, /*add_special_tokens=*/true)
                                             : parse_id_list(vm["prompt-ids"].as<std::string>(), "--prompt-ids", model.vocab_size());
  LOPA_CHECK(!prompt_ids.empty(), "--prompt: empty after tokenization (and the tokenizer adds no BOS)");
  if (gc.eos_token_ids.empty() && model.config().eos_token_ids.empty() && tok && tok->eos_id()) gc.eos_token_ids = {*tok->eos_id()};
  std::vector<int64_t> generated;
  if (adapter.empty()) {
    generated = generate(model, {prompt_ids}, gc)[0];
  } else {
    auto run = load_adapter_run(adapter, model, *tok);
    generated = generate_with_adapter(run, model, {prompt_ids}, {tok->decode(prompt_ids, true)}, gc)[0];
  }

  std::vector<int64_t> all = prompt_ids;
  all.insert(all.end(), generated.begin(), generated.end());
  if (!pg.is_root()) return 0;  // every rank generated the same tokens; one prints
  if (vm["json"].as<bool>()) {
    nlohmann::ordered_json j;
    j["prompt_ids"] = prompt_ids;
    j["generated_ids"] = generated;
    j["text"] = tok ? tok->decode(all, /*skip_special_tokens=*/true) : "";
    std::cout << j.dump() << std::endl;
  } else if (tok) {
    std::cout << tok->decode(all, /*skip_special_tokens=*/true) << std::endl;
  } else {
    for (size_t i = 0; i < generated.size(); ++i) std::cout << (i ? " " : "") << generated[i];
    std::cout << std::endl;
  }
  return 0;
}

}  // namespace lopa::app
