// `lopa embed`: one pooled embedding per input line — the sequence vector an encoder stands for (the
// family's rule, or --pooling), for parity checks and for inspecting prompt-generator encoders.
#include <iostream>
#include <optional>

#include "apps/commands.h"
#include "apps/options.h"
#include "experiments/eval/model_inputs.h"
#include "runtime/distributed/mpi_runtime.h"
#include "runtime/distributed/process_group.h"
#include "runtime/io/dtype.h"
#include "runtime/model/encoder.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa::app {

int cmd_embed(const Args& args) {
  po::options_description desc("embed");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "Hugging Face checkpoint directory (encoder or decoder)")
      ("input", po::value<std::string>()->required(), "JSON lines: {\"ids\": [...]} or {\"text\": \"...\"}, optional \"attention_mask\"")
      ("pooling", po::value<std::string>()->default_value("auto"),
       "auto (the family's: first token for BERT/RoBERTa/CodeBERT, L2-normalised masked mean for CodeSage, "
       "last real token for a decoder), first, mean (L2-normalised) or last")
      ("dtype", po::value<std::string>()->default_value("float32"), "run dtype: float32, bfloat16, float16")
      ("tp", po::value<int>()->default_value(1), "tensor-parallel ranks (run under mpirun -np <multiple of tp>)");
  auto opts = parse_options("embed", "--model DIR --input FILE [--pooling auto|first|mean|last]", desc, args);
  if (opts.help) return 0;
  const auto& vm = opts.vm;
  const auto dir = vm["model"].as<std::string>();
  const auto dtype = parse_dtype(vm["dtype"].as<std::string>(), "--dtype");
  const auto pooling = parse_pooling(vm["pooling"].as<std::string>(), "--pooling");
  MpiRuntime mpi;
  const auto pg = ProcessGroup::init(vm["tp"].as<int>(), "cpu");
  const auto encoder = Encoder::load(dir, pg, dtype, pooling);
  std::optional<Tokenizer> tok;
  if (Tokenizer::available(dir)) tok = Tokenizer::from_dir(dir);
  const auto inputs = read_model_inputs(vm["input"].as<std::string>(), tok ? &*tok : nullptr, encoder.config().vocab_size);
  write_embeddings(encoder, inputs, [](const std::string& line) { std::cout << line << "\n"; });
  std::cout.flush();
  return 0;
}

}  // namespace lopa::app
