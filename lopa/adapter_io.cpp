#include "lopa/adapter_io.h"

#include <filesystem>
#include <fstream>

#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa {

void write_adapter(const std::string& dir, const NamedTensors& tensors, const nlohmann::json& config,
                   const std::string& config_name, const std::string& weights_name) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  LOPA_CHECK(!ec, dir, ": cannot create directory (", ec.message(), ")");
  NamedTensors cpu;
  cpu.reserve(tensors.size());
  for (const auto& [name, t] : tensors) cpu.emplace_back(name, t.detach().to(at::kCPU).contiguous());
  // Both writes are atomic (save_safetensors too), so a reader never sees half a file.
  save_safetensors(dir + "/" + weights_name, cpu);
  write_file_atomic(dir + "/" + config_name, config.dump(2) + "\n");
}

nlohmann::json read_adapter_config(const std::string& dir, const std::string& config_name) {
  const auto path = dir + "/" + config_name;
  std::ifstream in(path);
  LOPA_CHECK(in, path, ": cannot open adapter config");
  try {
    return parse_json(in);
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
}

NamedTensors read_adapter_tensors(const std::string& dir, const std::string& weights_name) {
  auto file = SafetensorsFile::open(dir + "/" + weights_name);
  NamedTensors out;
  for (const auto& name : file.names()) out.emplace_back(name, file.tensor(name).clone());
  return out;
}

}  // namespace lopa
