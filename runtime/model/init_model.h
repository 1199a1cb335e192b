// init_model: a randomly initialised Hugging Face checkpoint of any supported architecture and size
// (benchmarks and tests need models of chosen sizes). Linear and embedding weights ~ N(0,
// initializer_range), biases 0, norm weights 1, as transformers' _init_weights.
#pragma once

#include <cstdint>
#include <string>

namespace lopa {

// Reads `config_json_path`, writes out_dir/{config.json, model.safetensors} (dtype: the config's
// torch_dtype, default float32) and copies tokenizer.json / tokenizer_config.json /
// special_tokens_map.json from `tokenizer_dir` when given.
void init_model(const std::string& config_json_path, const std::string& out_dir, const std::string& tokenizer_dir,
                uint64_t seed);

}  // namespace lopa
