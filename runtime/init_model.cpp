// init_model: random HF checkpoint of a config, initialised as transformers' _init_weights.
#include "runtime/init_model.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>

#include "runtime/dtype.h"
#include "runtime/atomic_file.h"
#include "runtime/error.h"
#include "runtime/model_config.h"
#include "runtime/safetensors.h"

namespace lopa {

void init_model(const std::string& config_json_path, const std::string& out_dir, const std::string& tokenizer_dir,
                uint64_t seed) {
  namespace fs = std::filesystem;
  at::NoGradGuard no_grad;
  const auto cfg = LlamaConfig::from_file(config_json_path);
  const at::ScalarType dtype = cfg.torch_dtype.empty() ? at::kFloat : parse_dtype(cfg.torch_dtype, config_json_path + ": torch_dtype");
  if (!tokenizer_dir.empty())
    LOPA_CHECK(fs::exists(fs::path(tokenizer_dir) / "tokenizer.json"), tokenizer_dir, ": no tokenizer.json");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  LOPA_CHECK(!ec, out_dir, ": cannot create directory (", ec.message(), ")");

  auto gen = at::detail::createCPUGenerator(seed);
  NamedTensors tensors;
  for (const auto& [name, shape] : cfg.hf_tensor_shapes()) {
    at::Tensor t;
    const bool is_norm = name.find("norm.weight") != std::string::npos;
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) t = at::ones(shape, at::kFloat);
    else if (is_bias) t = at::zeros(shape, at::kFloat);
    else t = at::empty(shape, at::kFloat).normal_(0.0, cfg.initializer_range, gen);
    tensors.push_back({name, t.to(dtype)});
  }
  save_safetensors(out_dir + "/model.safetensors", tensors);
  write_file_atomic(out_dir + "/config.json", cfg.to_json() + "\n");
  if (!tokenizer_dir.empty()) {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
      const fs::path src = fs::path(tokenizer_dir) / f;
      if (fs::exists(src)) fs::copy_file(src, fs::path(out_dir) / f, fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace lopa
