// init_model: random HF checkpoint of a config, initialised as transformers' _init_weights.
#include "runtime/model/init_model.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>

#include "runtime/io/dtype.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"
#include "runtime/model/architecture.h"
#include "runtime/io/safetensors.h"

namespace lopa {

void init_model(const std::string& config_json_path, const std::string& out_dir, const std::string& tokenizer_dir,
                uint64_t seed) {
  namespace fs = std::filesystem;
  at::NoGradGuard no_grad;
  const auto arch = load_architecture(config_json_path);
  const auto& cfg = arch->config();
  const at::ScalarType dtype = cfg.torch_dtype.empty() ? at::kFloat : parse_dtype(cfg.torch_dtype, config_json_path + ": torch_dtype");
  if (!tokenizer_dir.empty())
    LOPA_CHECK(fs::exists(fs::path(tokenizer_dir) / "tokenizer.json"), tokenizer_dir, ": no tokenizer.json");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  LOPA_CHECK(!ec, out_dir, ": cannot create directory (", ec.message(), ")");

  auto gen = at::detail::createCPUGenerator(seed);
  NamedTensors tensors;
  for (const auto& ts : tensor_table(arch->spec(), cfg)) {
    at::Tensor t;
    if (ts.kind == TensorSpec::NormWeight) t = at::ones(ts.shape, at::kFloat);
    else if (ts.kind == TensorSpec::Bias || ts.kind == TensorSpec::NormBias) t = at::zeros(ts.shape, at::kFloat);
    else t = at::empty(ts.shape, at::kFloat).normal_(0.0, cfg.initializer_range, gen);
    tensors.push_back({ts.name, t.to(dtype)});
  }
  save_safetensors(out_dir + "/model.safetensors", tensors);
  write_file_atomic(out_dir + "/config.json", cfg.json + "\n");
  if (!tokenizer_dir.empty()) {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
      const fs::path src = fs::path(tokenizer_dir) / f;
      if (fs::exists(src)) fs::copy_file(src, fs::path(out_dir) / f, fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace lopa
