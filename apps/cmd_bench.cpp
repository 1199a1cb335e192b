// `lopa bench train|generate`: throughput, FLOP/s and MFU against the matmul peak measured in the same
// run, peak RSS; one JSON line with --json. Runs under mpirun for tp > 1 (rank 0 prints).
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/bench/generate_bench.h"
#include "experiments/bench/train_step_bench.h"
#include "runtime/base/error.h"
#include "runtime/distributed/mpi_runtime.h"
#include "runtime/distributed/process_group.h"

namespace lopa::app {

namespace {

void print(const nlohmann::ordered_json& j, bool json) {
  if (json) {
    std::cout << j.dump() << std::endl;
    return;
  }
  for (const auto& [k, v] : j.items())
    if (k != "flops_convention" && k != "step_ms_all") std::cout << k << ": " << v.dump() << "\n";
  std::cout << "flops_convention: " << j["flops_convention"].get<std::string>() << std::endl;
}

// The options both benchmarks take, bound to the fields of their options struct.
template <typename Options>
void add_shared_options(po::options_description& desc, Options& o, const char* seed_help) {
  desc.add_options()
      ("model", po::value<std::string>(&o.model)->required(), "Hugging Face checkpoint directory")
      ("dtype", po::value<std::string>(&o.dtype)->default_value("float32"), "float32, bfloat16, float16")
      ("seed", po::value<int64_t>(&o.seed)->default_value(0), seed_help)
      ("tp", po::value<int>()->default_value(1), "tensor-parallel ranks (mpirun -np TP)")
      ("device", po::value<std::string>()->default_value("cpu"), "cpu, cuda, cuda:N or auto")
      ("json", po::bool_switch(), "print one JSON line");
}

// Parses, starts MPI and the process group, runs the benchmark; rank 0 prints.
template <typename Run>
int run_bench(const std::string& name, const std::string& usage, const po::options_description& desc,
              const Args& args, Run run) {
  auto opts = parse_options(name, usage, desc, args);
  if (opts.help) return 0;
  MpiRuntime mpi;
  const auto pg = ProcessGroup::init(opts.vm["tp"].as<int>(), opts.vm["device"].as<std::string>());
  const auto j = run(pg);
  if (pg.is_root()) print(j, opts.vm["json"].as<bool>());
  return 0;
}

int bench_train(const Args& args) {
  po::options_description desc("bench train");
  TrainBenchOptions o;
  add_shared_options(desc, o, "synthetic batch and initialisation seed");
  desc.add_options()
      ("tokenizer", po::value<std::string>(&o.tokenizer), "tokenizer directory (default: the model's)")
      ("method", po::value<std::string>(&o.method)->default_value("lopa"), "lopa, pt, idpg, lora, prefix, fft")
      ("batch-size", po::value<int64_t>(&o.batch_size)->default_value(4), "rows per step")
      ("seq-len", po::value<int64_t>(&o.seq_len)->default_value(128), "positions the FM processes per row, soft prompt included")
      ("steps", po::value<int64_t>(&o.steps)->default_value(5), "timed steps (the median is reported)")
      ("warmup", po::value<int64_t>(&o.warmup)->default_value(1), "untimed steps first")
      ("target-tokens", po::value<int64_t>(&o.target_tokens)->default_value(1), "label tokens per row (the rest is ignored by the loss)")
      ("num-virtual-tokens", po::value<int64_t>(&o.num_virtual_tokens)->default_value(10), "soft-prompt length m")
      ("rank", po::value<int64_t>(&o.rank)->default_value(4), "LoPA / LoRA rank r")
      ("lora-targets", po::value<std::string>(&o.lora_targets)->default_value("q,k,v"), "LoRA projections");
  return run_bench("bench train", "--model DIR [--method M] [--batch-size B] [--seq-len L] [--steps N] [--tp T] [--json]",
                   desc, args, [&](const ProcessGroup& pg) { return run_train_bench(o, pg); });
}

int bench_generate(const Args& args) {
  po::options_description desc("bench generate");
  GenerateBenchOptions o;
  add_shared_options(desc, o, "prompt seed");
  desc.add_options()
      ("batch-size", po::value<int64_t>(&o.batch_size)->default_value(1), "sequences")
      ("prompt-len", po::value<int64_t>(&o.prompt_len)->default_value(64), "random prompt tokens (prefill)")
      ("new-tokens", po::value<int64_t>(&o.new_tokens)->default_value(64), "greedy decode steps")
      ("repeats", po::value<int64_t>(&o.repeats)->default_value(3), "best of this many runs");
  return run_bench("bench generate", "--model DIR [--prompt-len P] [--new-tokens N] [--json]", desc, args,
                   [&](const ProcessGroup& pg) { return run_generate_bench(o, pg); });
}

}  // namespace

int cmd_bench(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: lopa bench train|generate [OPTIONS] [--json]   (lopa bench train --help)\n"
                 "  train     time the trainer's step on a synthetic batch: tokens/s, MFU, peak RSS\n"
                 "  generate  prefill and KV-cached decode tokens/s, MFU, peak RSS\n";
    return args.empty() ? 2 : 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "train") return bench_train(rest);
  if (args[0] == "generate") return bench_generate(rest);
  fail("lopa bench: unknown benchmark '", args[0], "' (train or generate)");
}

}  // namespace lopa::app
