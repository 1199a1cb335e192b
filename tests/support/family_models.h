// Random-init checkpoints of the decoder families beyond Llama for end-to-end tests of training,
// evaluation and generation: written by the independent references (bench/<family>_ref.py init, HF
// state-dict names, non-zero biases) from the tiny configs, resized to stories260K's 512-token
// vocabulary and given its tokenizer files, so that every task and method runs on them.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace lopa::test {

inline std::string family_model(const std::string& family) {
  static std::mutex mu;
  static std::map<std::string, std::string> made;
  std::lock_guard<std::mutex> lock(mu);
  if (made.count(family)) return made[family];
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lopa_family_" + family + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string stories = std::string(LOPA_SHARED_DIR) + "/models/stories260K";
  std::ifstream in(std::string(LOPA_SOURCE_DIR) + "/bench/configs/" + family + "-tiny.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["vocab_size"] = 512;
  cfg["bos_token_id"] = 1;
  cfg["eos_token_id"] = 2;
  for (const char* k : {"n_positions", "n_ctx", "max_position_embeddings"})
    if (cfg.contains(k)) cfg[k] = 256;
  std::ofstream(dir / "config.json") << cfg.dump(2);
  const std::string cmd = "/usr/bin/python3 " + std::string(LOPA_SOURCE_DIR) + "/bench/" + family + "_ref.py init --config " +
                          (dir / "config.json").string() + " --out " + (dir / "model").string() + " --seed 5" +
                          (family == "codegen" ? " --no-buffers" : "") + " > /dev/null";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("family_model: failed: " + cmd);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    if (fs::exists(fs::path(stories) / f))
      fs::copy_file(fs::path(stories) / f, dir / "model" / f, fs::copy_options::overwrite_existing);
  return made[family] = (dir / "model").string();
}

}  // namespace lopa::test
