// Helpers shared by the model test files: temp dirs, running the `lopa` program and bench/llama_ref.py.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <set>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/model/init_model.h"

namespace lopa::testing {

inline std::string stories_dir() { return std::string(LOPA_SHARED_DIR) + "/models/stories260K"; }

inline std::string temp_dir(const std::string& tag) {
  auto base = std::filesystem::temp_directory_path() /
              ("lopa_model_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand()));
  std::filesystem::create_directories(base);
  return base.string();
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

struct RunResult {
  int status;
  std::string out, err;
};

// Runs a shell command, capturing stdout and stderr.
inline RunResult run(const std::string& cmd) {
  const auto dir = temp_dir("run");
  const int rc = std::system((cmd + " > " + dir + "/out 2> " + dir + "/err").c_str());
  RunResult r{WIFEXITED(rc) ? WEXITSTATUS(rc) : 128, read_text(dir + "/out"), read_text(dir + "/err")};
  std::filesystem::remove_all(dir);
  return r;
}

inline std::vector<nlohmann::json> sample_lines(const std::string& kind) {
  std::ifstream in(stories_dir() + "/samples.jsonl");
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == kind) out.push_back(j);
  }
  return out;
}

// Makes a random-init checkpoint (runtime init_model, as `lopa init-model` does) from a config JSON text.
inline std::string make_model(const std::string& tag, const std::string& config_json, int seed = 1) {
  const auto dir = temp_dir(tag);
  write_text(dir + "/config.json", config_json);
  lopa::init_model(dir + "/config.json", dir + "/model", stories_dir(), seed);
  return dir + "/model";
}

}  // namespace lopa::testing
