#include "cluster/sweep_plan.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>

#include "cluster/cell_command.h"
#include "cluster/train_keys.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"

namespace lopa::cluster {

namespace fs = std::filesystem;

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string canonical_text(const std::map<std::string, std::string>& keys) {
  std::string out;
  for (const auto& [k, v] : keys) out += k + "=" + v + "\n";  // std::map: byte order of keys
  return out;
}

namespace {

// Keeps [A-Za-z0-9.] and folds everything else into single '_' (ids are file and job names).
std::string slug_part(const std::string& s, size_t max_len) {
  std::string out;
  for (char c : s) {
    if (std::isalnum((unsigned char)c) || c == '.') out += c;
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && (out.back() == '_' || out.back() == '.')) out.pop_back();
  if (out.size() > max_len) out.resize(max_len);
  return out;
}

}  // namespace

std::string cell_id(const std::map<std::string, std::string>& keys) {
  std::vector<std::string> parts;
  const auto add = [&](const char* key, const char* prefix, size_t max_len) {
    auto it = keys.find(key);
    if (it == keys.end()) return;
    std::string v = it->second;
    if (std::string(key) == "model") v = fs::path(v).lexically_normal().filename().string().empty()
                                             ? fs::path(v).lexically_normal().parent_path().filename().string()
                                             : fs::path(v).lexically_normal().filename().string();
    const auto p = slug_part(v, max_len);
    if (!p.empty()) parts.push_back(prefix + p);
  };
  add("model", "", 24);
  add("task", "", 16);
  add("method", "", 12);
  add("num-virtual-tokens", "m", 8);
  add("rank", "r", 8);
  add("seed", "s", 12);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a64(canonical_text(keys)));
  std::string id;
  for (const auto& p : parts) id += p + "-";
  return id + std::string(hex, 8);
}

Plan make_plan(const SweepSpec& spec, std::ostream* warnings_to) {
  Plan plan;
  plan.spec = spec;
  const auto& path = spec.path;

  // Methods of the sweep, then expansion: one partial cell per method value, crossed with every
  // other axis in table order, skipping axes (and fixed keys) the cell's method does not use. A key
  // in the method's [grid.METHOD] is crossed there instead of taking [fixed].
  std::vector<std::string> methods =
      spec.grid.count("method") ? spec.grid.at("method") : std::vector<std::string>{spec.fixed.at("method")};
  static const std::map<std::string, std::vector<std::string>> kNoAxes;
  const auto own_axes = [&](const std::string& m) -> const std::map<std::string, std::vector<std::string>>& {
    const auto it = spec.method_grid.find(m);
    return it == spec.method_grid.end() ? kNoAxes : it->second;
  };
  for (const auto& k : train_keys()) {
    const bool in_grid = spec.grid.count(k.name), in_fixed = spec.fixed.count(k.name);
    if (!in_grid && !in_fixed) continue;
    bool used = false;
    std::vector<std::string> takers, overriders;  // [fixed]: methods that take it, methods with their own axis
    for (const auto& m : methods) {
      if (!method_uses(k, m)) continue;
      used = true;
      (own_axes(m).count(k.name) ? overriders : takers).push_back(m);
    }
    LOPA_CHECK(used, path, ": [", in_grid ? "grid" : "fixed", "] ", k.name, " is not used by any method of the sweep (",
               k.name, " applies to ", k.methods, ")");
    if (in_fixed && takers.empty()) {
      std::string sections;
      for (const auto& m : overriders) sections += (sections.empty() ? "[grid." : ", [grid.") + m + "]";
      fail(path, ": [fixed] ", k.name, " is taken by no method: ", sections, " set", overriders.size() > 1 ? "" : "s",
           " it for every method that uses it");
    }
  }

  std::vector<std::map<std::string, std::string>> cells;
  for (const auto& m : methods) {
    const auto& own = own_axes(m);
    std::vector<std::map<std::string, std::string>> partial = {{{"method", m}}};
    for (const auto& k : train_keys()) {
      const std::string name = k.name;
      if (name == "method" || !method_uses(k, m)) continue;
      const std::vector<std::string>* axis = own.count(name) ? &own.at(name) : spec.grid.count(name) ? &spec.grid.at(name) : nullptr;
      if (axis) {
        std::vector<std::map<std::string, std::string>> next;
        for (const auto& c : partial)
          for (const auto& v : *axis) {
            auto c2 = c;
            c2[name] = v;
            next.push_back(std::move(c2));
          }
        partial = std::move(next);
      } else if (spec.fixed.count(name)) {
        for (auto& c : partial) c[name] = spec.fixed.at(name);
      } else if (name == "tp" && !spec.launch_tp.empty()) {
        for (auto& c : partial) c[name] = spec.launch_tp;
      }
    }
    cells.insert(cells.end(), partial.begin(), partial.end());
  }

  std::set<std::string> ids;
  for (auto& keys : cells) {
    if (keys.count("tp")) {
      const long long tp = std::stoll(keys.at("tp"));  // checked: an integer >= 1 (up to 2^63 - 1)
      LOPA_CHECK(spec.launch.ranks_per_cell % tp == 0, path, ": tp = ", tp, " does not divide [launch] ranks-per-cell = ",
                 spec.launch.ranks_per_cell, " (world = tp x dp)");
    }
    Cell c;
    c.index = int(plan.cells.size());
    c.id = cell_id(keys);
    c.keys = std::move(keys);
    LOPA_CHECK(ids.insert(c.id).second, path, ": two cells hash to the same id ", c.id);
    plan.cells.push_back(std::move(c));
  }

  // Paths that do not exist here, relative ones from the current directory (where cells run), each once.
  std::set<std::pair<std::string, std::string>> missing;
  for (const auto& c : plan.cells)
    for (const auto& [key, value] : c.keys) {
      const TrainKey* k = find_train_key(key);
      std::error_code ec;
      if (k && k->type == KeyType::Path && !value.empty() && !fs::exists(value, ec)) missing.emplace(key, value);
    }
  for (const auto& [key, value] : missing) {
    std::error_code ec;
    std::string w = path + ": " + key + " = '" + value + "' does not exist here (" +
                    (fs::path(value).is_relative() ? "from " + fs::current_path(ec).string() + "; " : "") +
                    "fine if it exists where the cells run)";
    const auto id = (key == "model" || key == "encoder") ? hub_id_of(spec, value) : std::string();
    if (!id.empty())  // [download] ids are owner/name of [A-Za-z0-9._-]: nothing to quote
      w += "; hub id " + id + ": huggingface-cli download " + id + " --local-dir " + shell_quote(value);
    plan.warnings.push_back(w);
    if (warnings_to) *warnings_to << "lopa sweep: warning: " << plan.warnings.back() << std::endl;
  }
  return plan;
}

std::string plan_json(const Plan& plan) {
  const auto P = paths_of(plan.spec);
  nlohmann::ordered_json j;
  j["name"] = plan.spec.name;
  j["root"] = plan.spec.root;
  j["spec"] = plan.spec.path;
  j["cells"] = nlohmann::ordered_json::array();
  for (const auto& c : plan.cells) {
    nlohmann::ordered_json cj;
    cj["index"] = c.index;
    cj["id"] = c.id;
    cj["run_dir"] = P.run_dir(c.id);
    cj["config"] = P.config(c.id);
    cj["keys"] = c.keys;
    j["cells"].push_back(cj);
  }
  return j.dump(2);
}

std::string cell_config_text(const Plan& plan, const Cell& cell) {
  std::ostringstream os;
  os << "# cell " << cell.id << " of sweep " << plan.spec.name << " (" << plan.spec.path << ")\n";
  for (const auto& k : train_keys())  // table order: readable, and the same for every cell
    if (cell.keys.count(k.name)) os << k.name << " = " << cell.keys.at(k.name) << "\n";
  return os.str();
}

namespace {

void write_if_changed(const std::string& path, const std::string& text) {
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      if (ss.str() == text) return;
    }
  }
  write_file_atomic(path, text);
}

}  // namespace

void write_plan_files(const Plan& plan) {
  const auto P = paths_of(plan.spec);
  std::error_code ec;
  for (const auto& d : {P.dir() + "/configs", P.dir() + "/logs", P.dir() + "/state"}) {
    fs::create_directories(d, ec);
    LOPA_CHECK(!ec, d, ": cannot create directory: ", ec.message());
  }
  std::ifstream spec_in(plan.spec.path, std::ios::binary);
  LOPA_CHECK(spec_in, plan.spec.path, ": cannot read sweep spec");
  std::stringstream spec_text;
  spec_text << spec_in.rdbuf();
  // Verbatim: relative paths in it resolve from the directory the sweep is started in, which is
  // where every executor runs cells (the SLURM script sets --chdir to it).
  write_if_changed(P.spec_copy(), spec_text.str());
  write_if_changed(P.plan_json(), plan_json(plan) + "\n");
  for (const auto& c : plan.cells) write_if_changed(P.config(c.id), cell_config_text(plan, c));
}

}  // namespace lopa::cluster
