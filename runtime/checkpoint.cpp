// HF checkpoint directory: single file or sharded index.
#include "runtime/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/error.h"

namespace lopa {

namespace {
bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}
}  // namespace

Checkpoint Checkpoint::open(const std::string& dir_in) {
  Checkpoint c;
  c.dir_ = dir_in;
  while (c.dir_.size() > 1 && c.dir_.back() == '/') c.dir_.pop_back();
  struct stat st {};
  LOPA_CHECK(::stat(c.dir_.c_str(), &st) == 0 && S_ISDIR(st.st_mode), c.dir_, ": not a model directory");
  const std::string single = c.dir_ + "/model.safetensors";
  const std::string index = c.dir_ + "/model.safetensors.index.json";
  std::map<std::string, size_t> where;
  if (exists(index)) {
    std::ifstream in(index);
    LOPA_CHECK(in, index, ": cannot open");
    nlohmann::json j;
    try {
      in >> j;
    } catch (const std::exception& e) {
      fail(index, ": not valid JSON (", e.what(), ")");
    }
    LOPA_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), index,
               ": missing object 'weight_map'");
    std::map<std::string, size_t> file_ids;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      LOPA_CHECK(it->is_string(), index, ": weight_map entry '", it.key(), "' is not a file name");
      const auto file = it->get<std::string>();
      LOPA_CHECK(file.find('/') == std::string::npos, index, ": shard name '", file, "' must be a plain file name");
      auto f = file_ids.find(file);
      if (f == file_ids.end()) {
        const std::string path = c.dir_ + "/" + file;
        LOPA_CHECK(exists(path), index, ": shard '", file, "' named for '", it.key(), "' does not exist");
        c.shards_.push_back(SafetensorsFile::open(path));
        f = file_ids.emplace(file, c.shards_.size() - 1).first;
      }
      LOPA_CHECK(c.shards_[f->second].contains(it.key()), index, ": tensor '", it.key(), "' is not in shard '", file, "'");
      where[it.key()] = f->second;
    }
  } else {
    LOPA_CHECK(exists(single), c.dir_, ": no model.safetensors or model.safetensors.index.json");
    c.shards_.push_back(SafetensorsFile::open(single));
    for (const auto& n : c.shards_[0].names()) where[n] = 0;
  }
  c.index_.assign(where.begin(), where.end());
  return c;
}

bool Checkpoint::contains(const std::string& name) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), name,
                             [](const auto& e, const std::string& n) { return e.first < n; });
  return it != index_.end() && it->first == name;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& e : index_) out.push_back(e.first);
  return out;
}

const SafetensorsFile& Checkpoint::shard_of(const std::string& name) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), name,
                             [](const auto& e, const std::string& n) { return e.first < n; });
  LOPA_CHECK(it != index_.end() && it->first == name, dir_, ": tensor '", name, "' not found in ",
             shards_.size() == 1 ? "model.safetensors" : "model.safetensors.index.json");
  return shards_[it->second];
}

const TensorInfo& Checkpoint::info(const std::string& name) const { return shard_of(name).info(name); }
std::string Checkpoint::file_of(const std::string& name) const { return shard_of(name).path(); }

int64_t Checkpoint::num_elements() const {
  int64_t n = 0;
  for (const auto& e : index_) n += shards_[e.second].info(e.first).numel();
  return n;
}

at::Tensor Checkpoint::tensor(const std::string& name, at::ScalarType dtype) const {
  return shard_of(name).tensor(name, dtype);
}
at::Tensor Checkpoint::rows(const std::string& name, int64_t b, int64_t e, at::ScalarType dtype) const {
  return shard_of(name).rows(name, b, e, dtype);
}
at::Tensor Checkpoint::cols(const std::string& name, int64_t b, int64_t e, at::ScalarType dtype) const {
  return shard_of(name).cols(name, b, e, dtype);
}

}  // namespace lopa
