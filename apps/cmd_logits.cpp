// `lopa logits`: what model(**inputs).logits is for a transformers user — full-vocabulary float32
// logits at every position of each input line (a *ForMaskedLM checkpoint: its masked-LM logits), for
// debugging and parity checks.
#include <iostream>
#include <optional>
#include <sys/stat.h>

#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/eval/model_inputs.h"
#include "runtime/distributed/mpi_runtime.h"
#include "runtime/distributed/process_group.h"
#include "runtime/io/dtype.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa::app {

int cmd_logits(const Args& args) {
  po::options_description desc("logits");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "Hugging Face checkpoint directory")
      ("input", po::value<std::string>()->required(), "JSON lines: {\"ids\": [...]} or {\"text\": \"...\"}, optional \"attention_mask\"")
      ("dtype", po::value<std::string>()->default_value("float32"), "run dtype: float32, bfloat16, float16")
      ("tp", po::value<int>()->default_value(1), "tensor-parallel ranks (run under mpirun -np <multiple of tp>)");
  auto opts = parse_options("logits", "--model DIR --input FILE", desc, args);
  if (opts.help) return 0;
  const auto& vm = opts.vm;
  const auto dir = vm["model"].as<std::string>();
  const auto dtype = parse_dtype(vm["dtype"].as<std::string>(), "--dtype");
  MpiRuntime mpi;
  const auto pg = ProcessGroup::init(vm["tp"].as<int>(), "cpu");
  auto model = CausalLM::load(dir, pg, dtype);
  std::optional<Tokenizer> tok;
  if (Tokenizer::available(dir)) tok = Tokenizer::from_dir(dir);
  const auto inputs = read_model_inputs(vm["input"].as<std::string>(), tok ? &*tok : nullptr, model.vocab_size());
  write_logits(model, inputs, [](const std::string& line) { std::cout << line << "\n"; });
  std::cout.flush();
  return 0;
}

}  // namespace lopa::app
