// HF checkpoint directory: single file or sharded index, safetensors or torch.save .bin.
#include "runtime/io/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <variant>

#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa {

namespace {
bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// A weights file by its content: *.safetensors as before; anything else (pytorch_model*.bin) is
// what its first bytes say, so a .bin that holds safetensors still loads and any other content gets
// TorchBinFile's error naming what it is.
std::variant<SafetensorsFile, TorchBinFile> open_weights(const std::string& path) {
  const bool st_name = path.size() >= 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
  if (st_name || sniff_weights_format(path) == WeightsFormat::kSafetensors) return SafetensorsFile::open(path);
  return TorchBinFile::open(path);
}
}  // namespace

Checkpoint Checkpoint::open(const std::string& dir_in) {
  Checkpoint c;
  c.dir_ = dir_in;
  while (c.dir_.size() > 1 && c.dir_.back() == '/') c.dir_.pop_back();
  struct stat st {};
  LOPA_CHECK(::stat(c.dir_.c_str(), &st) == 0 && S_ISDIR(st.st_mode), c.dir_, ": not a model directory");
  // transformers' preference: safetensors before torch.save files; an index before a single file as
  // lopa always read them.
  const std::vector<std::pair<std::string, bool>> candidates = {{"model.safetensors.index.json", true},
                                                                {"model.safetensors", false},
                                                                {"pytorch_model.bin.index.json", true},
                                                                {"pytorch_model.bin", false}};
  bool sharded = false;
  for (const auto& [file, is_index] : candidates) {
    if (exists(c.dir_ + "/" + file)) {
      c.source_ = file;
      sharded = is_index;
      break;
    }
  }
  LOPA_CHECK(!c.source_.empty(), c.dir_,
             ": no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json");
  std::map<std::string, size_t> where;
  if (sharded) {
    const std::string index = c.dir_ + "/" + c.source_;
    std::ifstream in(index);
    LOPA_CHECK(in, index, ": cannot open");
    nlohmann::json j;
    try {
      j = parse_json(in);
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
        c.shards_.push_back(open_weights(path));
        f = file_ids.emplace(file, c.shards_.size() - 1).first;
      }
      const bool has = std::visit([&](const auto& s) { return s.contains(it.key()); }, c.shards_[f->second]);
      LOPA_CHECK(has, index, ": tensor '", it.key(), "' is not in shard '", file, "'");
      where[it.key()] = f->second;
    }
  } else {
    c.shards_.push_back(open_weights(c.dir_ + "/" + c.source_));
    for (const auto& n : std::visit([](const auto& s) { return s.names(); }, c.shards_[0])) where[n] = 0;
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

const Checkpoint::Shard& Checkpoint::shard_of(const std::string& name) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), name,
                             [](const auto& e, const std::string& n) { return e.first < n; });
  LOPA_CHECK(it != index_.end() && it->first == name, dir_, ": tensor '", name, "' not found in ", source_);
  return shards_[it->second];
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  return std::visit([&](const auto& s) -> const TensorInfo& { return s.info(name); }, shard_of(name));
}
std::string Checkpoint::file_of(const std::string& name) const {
  return std::visit([](const auto& s) { return s.path(); }, shard_of(name));
}

int64_t Checkpoint::num_elements() const {
  int64_t n = 0;
  for (const auto& e : index_)
    n += std::visit([&](const auto& s) { return s.info(e.first).numel(); }, shards_[e.second]);
  return n;
}

at::Tensor Checkpoint::tensor(const std::string& name, at::ScalarType dtype) const {
  return std::visit([&](const auto& s) { return s.tensor(name, dtype); }, shard_of(name));
}
at::Tensor Checkpoint::rows(const std::string& name, int64_t b, int64_t e, at::ScalarType dtype) const {
  return std::visit([&](const auto& s) { return s.rows(name, b, e, dtype); }, shard_of(name));
}
at::Tensor Checkpoint::cols(const std::string& name, int64_t b, int64_t e, at::ScalarType dtype) const {
  return std::visit([&](const auto& s) { return s.cols(name, b, e, dtype); }, shard_of(name));
}

}  // namespace lopa
