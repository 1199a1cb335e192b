// `lopa info`: what a Hugging Face checkpoint directory holds (architecture, sizes, parameter count,
// stored dtype, tokenizer) and which BLAS this process computes with.
#include <sys/stat.h>

#include <iostream>
#include <map>

#include "apps/commands.h"
#include "apps/options.h"
#include "runtime/base/blas_info.h"
#include "runtime/base/build_info.h"
#include "runtime/base/host_allocator.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/finite_check.h"
#include "runtime/base/error.h"
#include "runtime/model/describe.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa::app {

namespace {
// --check-weights: a report line when every weight is finite, else one error naming the bad tensors.
void check_weights(const std::string& dir) {
  const auto scan = scan_non_finite(Checkpoint::open(dir));
  if (scan.bad.empty()) {
    std::cout << "weights:      all finite (" << scan.tensors << " floating-point tensors, " << scan.values
              << " values)" << std::endl;
    return;
  }
  std::string named;
  for (size_t i = 0; i < scan.bad.size() && i < 3; ++i) named += (i ? "; " : "") + describe(scan.bad[i]);
  if (scan.bad.size() > 3) named += str("; and ", scan.bad.size() - 3, " more");
  fail(dir, ": non-finite weights in ", scan.bad.size(), " of ", scan.tensors, " tensors: ", named);
}
}  // namespace

int cmd_info(const Args& args) {
  po::options_description desc("info");
  desc.add_options()("model", po::value<std::string>()->required(), "Hugging Face checkpoint directory")(
      "check-weights", po::bool_switch(),
      "read every stored weight and fail, naming the tensors, when any holds NaN or Inf");
  auto opts = parse_options("info", "--model DIR", desc, args);
  if (opts.help) return 0;
  const auto dir = opts.vm["model"].as<std::string>();
  const auto info = describe_checkpoint(dir);
  const auto& cfg = info.config;
  std::string dt;
  for (const auto& [code, n] : info.dtypes) dt += (dt.empty() ? "" : ", ") + code + " (" + std::to_string(n) + ")";
  std::string tokenizer = "none (no tokenizer.json)";
  struct stat st;
  if (::stat((dir + "/tokenizer.json").c_str(), &st) == 0) tokenizer = Tokenizer::from_dir(dir).describe();

  std::cout << "model:        " << dir << "\n"
            << "architecture: " << cfg.architecture << " (model_type " << cfg.model_type << ")\n"
            << "kind:         " << info.kind << "\n"
            << "parameters:   " << info.num_parameters << (cfg.tie_word_embeddings ? " (tied embeddings)" : "") << "\n"
            << "layers:       " << cfg.num_hidden_layers << ", hidden " << cfg.hidden_size << ", intermediate "
            << cfg.intermediate_size << ", heads " << cfg.num_attention_heads << " (kv " << cfg.num_key_value_heads
            << ", head_dim " << cfg.head_dim << "), vocab " << cfg.vocab_size << "\n"
            << "positions:    " << info.positions << "\n"
            << "dtype:        " << dt << (cfg.torch_dtype.empty() ? "" : "; config torch_dtype " + cfg.torch_dtype) << "\n"
            << "tokenizer:    " << tokenizer << "\n"
            << "blas:         " << blas_description() << "\n"
            << "allocator:    " << host_allocator() << "\n"
            << "build:        " << build_git_sha() << "\n"
            << "threads:      " << ensure_threads() << std::endl;
  if (opts.vm["check-weights"].as<bool>()) check_weights(dir);
  return 0;
}

}  // namespace lopa::app
