// `lopa info`: what a Hugging Face checkpoint directory holds (architecture, sizes, parameter count,
// stored dtype, tokenizer) and which BLAS this process computes with.
#include <sys/stat.h>

#include <iostream>
#include <map>

#include "apps/commands.h"
#include "apps/options.h"
#include "runtime/blas_info.h"
#include "runtime/build_info.h"
#include "runtime/host_allocator.h"
#include "runtime/checkpoint.h"
#include "runtime/error.h"
#include "runtime/model_config.h"
#include "runtime/tokenizer.h"

namespace lopa::app {

int cmd_info(const Args& args) {
  po::options_description desc("info");
  desc.add_options()("model", po::value<std::string>()->required(), "Hugging Face checkpoint directory");
  auto opts = parse_options("info", "--model DIR", desc, args);
  if (opts.help) return 0;
  const auto dir = opts.vm["model"].as<std::string>();
  const auto ck = Checkpoint::open(dir);
  const auto cfg = LlamaConfig::from_file(ck.config_path());
  std::map<std::string, int64_t> dtypes;
  for (const auto& [name, shape] : cfg.hf_tensor_shapes()) {
    const auto& info = ck.info(name);
    LOPA_CHECK(info.shape == shape, ck.file_of(name), ": tensor '", name, "' does not have the shape ", ck.config_path(),
               " implies");
    dtypes[info.dtype_code] += info.numel();
  }
  std::string dt;
  for (const auto& [code, n] : dtypes) dt += (dt.empty() ? "" : ", ") + code + " (" + std::to_string(n) + ")";
  std::string tokenizer = "none (no tokenizer.json)";
  struct stat st;
  if (::stat((dir + "/tokenizer.json").c_str(), &st) == 0) tokenizer = Tokenizer::from_dir(dir).describe();

  std::cout << "model:        " << dir << "\n"
            << "architecture: " << cfg.architecture << " (model_type " << cfg.model_type << ")\n"
            << "parameters:   " << cfg.num_parameters() << (cfg.tie_word_embeddings ? " (tied embeddings)" : "") << "\n"
            << "layers:       " << cfg.num_hidden_layers << ", hidden " << cfg.hidden_size << ", intermediate "
            << cfg.intermediate_size << ", heads " << cfg.num_attention_heads << " (kv " << cfg.num_key_value_heads
            << ", head_dim " << cfg.head_dim << "), vocab " << cfg.vocab_size << "\n"
            << "rope:         theta " << cfg.rope_theta
            << (cfg.rope_scaling.type.empty() ? std::string() : ", scaling " + cfg.rope_scaling.type + " x" + std::to_string(cfg.rope_scaling.factor))
            << "\n"
            << "dtype:        " << dt << (cfg.torch_dtype.empty() ? "" : "; config torch_dtype " + cfg.torch_dtype) << "\n"
            << "tokenizer:    " << tokenizer << "\n"
            << "blas:         " << blas_description() << "\n"
            << "allocator:    " << host_allocator() << "\n"
            << "build:        " << build_git_sha() << "\n"
            << "threads:      " << ensure_threads() << std::endl;
  return 0;
}

}  // namespace lopa::app
