// Reading and writing a method's trained parameters in a directory: one safetensors file plus one
// JSON config (adapter/ of a run; PEFT names them adapter_model.safetensors + adapter_config.json).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "runtime/io/safetensors.h"

namespace lopa {

// Creates `dir` if needed and writes `config` (pretty JSON) and `tensors` (CPU, contiguous copies).
void write_adapter(const std::string& dir, const NamedTensors& tensors, const nlohmann::json& config,
                   const std::string& config_name, const std::string& weights_name);
// Throws "DIR/NAME: ..." when missing or not JSON.
nlohmann::json read_adapter_config(const std::string& dir, const std::string& config_name);
// Every tensor of DIR/NAME, as stored (fp32 CPU copies).
NamedTensors read_adapter_tensors(const std::string& dir, const std::string& weights_name);

}  // namespace lopa
