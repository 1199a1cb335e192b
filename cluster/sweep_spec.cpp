#include "cluster/sweep_spec.h"

#include <boost/program_options.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cluster/cell_command.h"
#include "cluster/train_keys.h"
#include "runtime/base/error.h"
#include "runtime/tokenizer/unicode.h"

namespace lopa::cluster {

namespace po = boost::program_options;
namespace fs = std::filesystem;

const std::vector<std::string>& launch_key_names() {
  static const std::vector<std::string> names = {
      "executor",  "ranks-per-cell", "tp",           "jobs",      "max-retries", "max-parallel", "nodes",
      "gpus-per-node", "cpus-per-task", "mem",       "time",      "partition",   "account",      "qos",
      "sbatch-extra",  "launcher",   "srun-args",    "mpirun",    "mpirun-args", "signal-seconds",
      "cell-command",  "report-command", "lopa", "require-run-log"};
  return names;
}

std::string normal_dir(const std::string& dir) {
  std::string out = fs::path(dir).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string hub_id_of(const SweepSpec& spec, const std::string& dir) {
  const auto it = spec.download.find(normal_dir(dir));
  return it == spec.download.end() ? std::string() : it->second;
}

namespace {

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

int launch_int(const std::string& path, const std::string& key, const std::string& value, int min_value) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value.c_str(), &end, 10);
  LOPA_CHECK(!value.empty() && errno == 0 && end && *end == '\0', path, ": [launch] ", key, " = '", value,
             "': not an integer");
  LOPA_CHECK(v >= min_value, path, ": [launch] ", key, " = '", value, "': must be >= ", min_value);
  return int(v);
}

const char* kSections = "[grid], [grid.METHOD], [fixed], [download], [launch]";

// What the line scan learns: the line of each "section.key" (top-level keys without a section) for
// later messages, and the header line of each [grid.METHOD] section (Boost drops one without keys).
struct SpecLines {
  std::map<std::string, int> line_of;
  std::map<std::string, int> method_section_line;  // METHOD -> line of its first [grid.METHOD]
};

// The lines of the spec as Boost's config parser sees them (comments from '#', trimmed), checked
// before it runs: Boost silently drops a section header with no keys under it, names no lines, and
// passes bytes through unchecked.
SpecLines scan_spec_lines(const std::string& path, const std::string& text) {
  SpecLines out;
  std::istringstream in(text);
  std::string raw, section;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    const size_t bad = unicode::first_invalid_utf8(raw);
    LOPA_CHECK(bad == std::string::npos, path, ": line ", n, ": invalid UTF-8 at byte ", bad + 1);
    LOPA_CHECK(raw.find('\0') == std::string::npos, path, ": line ", n, ": NUL byte");
    std::string line = raw.substr(0, raw.find('#'));
    line = trim(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      LOPA_CHECK(line.back() == ']', path, ": line ", n, ": '", line, "': a section header is [name]");
      section = line.substr(1, line.size() - 2);
      // grid.METHOD: the method is checked against the sweep's methods once they are known.
      const bool method_section = section.rfind("grid.", 0) == 0 && section.size() > 5;
      // Before Boost reads the file, which drops a section without keys (an empty unknown section at
      // the end was accepted).
      LOPA_CHECK(section == "grid" || section == "fixed" || section == "launch" || section == "download" ||
                     method_section,
                 path, ": unknown section [", section, "] at line ", n, " (expected ", kSections, ")");
      if (method_section) out.method_section_line.emplace(section.substr(5), n);
      continue;
    }
    const size_t eq = line.find('=');
    LOPA_CHECK(eq != std::string::npos && !trim(line.substr(0, eq)).empty(), path, ": line ", n, ": '", line,
               "': expected KEY = VALUE or a [section] header");
    const std::string key = (section.empty() ? "" : section + ".") + trim(line.substr(0, eq));
    out.line_of.emplace(key, n);
  }
  return out;
}

// A comma-separated axis of `section` (grid or grid.METHOD): trimmed values, none empty or repeated,
// each one the key accepts.
std::vector<std::string> read_axis(const std::string& path, const std::string& section, const TrainKey& k,
                                   const std::string& raw, const std::string& where) {
  LOPA_CHECK(!raw.empty(), path, ": [", section, "] ", k.name, " is empty (give one or more comma-separated values)");
  auto values = split_list(raw);
  std::set<std::string> seen;
  for (const auto& v : values) {
    LOPA_CHECK(!v.empty(), path, ": [", section, "] ", k.name, " = '", raw, "': empty value in the list");
    LOPA_CHECK(seen.insert(v).second, path, ": [", section, "] ", k.name, " = '", raw, "': value '", v,
               "' is listed twice");
    check_train_value(k, v, where);
  }
  return values;
}

// A Hugging Face hub repository id: owner/name, each of letters, digits, '-', '_', '.'.
bool is_hub_id(const std::string& id) {
  const size_t slash = id.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == id.size() || id.find('/', slash + 1) != std::string::npos)
    return false;
  for (char c : id)
    if (!(std::isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/')) return false;
  return true;
}

}  // namespace

SweepSpec read_sweep_spec(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  LOPA_CHECK(file, path, ": cannot open sweep spec");
  std::stringstream text;
  text << file.rdbuf();
  LOPA_CHECK(!file.bad(), path, ": cannot read sweep spec");
  const auto lines = scan_spec_lines(path, text.str());
  const auto& line_of = lines.line_of;
  const auto at = [&](const std::string& key) {
    const auto it = line_of.find(key);
    return it == line_of.end() ? std::string() : " at line " + std::to_string(it->second);
  };
  std::istringstream in(text.str());

  // Every section.key the spec may hold is declared as a string option: grid.K and fixed.K for each
  // training key K, launch.K for each launch key, and the two top-level keys. [grid.METHOD] and
  // [download] keys come back unregistered and are collected here, in the order written.
  po::options_description desc;
  desc.add_options()("name", po::value<std::string>())("root", po::value<std::string>());
  for (const auto& k : train_keys()) {
    desc.add_options()(("grid." + std::string(k.name)).c_str(), po::value<std::string>());
    desc.add_options()(("fixed." + std::string(k.name)).c_str(), po::value<std::string>());
  }
  for (const auto& k : launch_key_names()) desc.add_options()(("launch." + k).c_str(), po::value<std::string>());

  po::variables_map vm;
  std::map<std::string, std::map<std::string, std::string>> method_raw;  // METHOD -> key -> value
  std::vector<std::pair<std::string, std::string>> download_raw;         // directory, hub id
  try {
    const auto parsed = po::parse_config_file(in, desc, /*allow_unregistered=*/true);
    std::set<std::string> seen_unregistered;
    for (const auto& o : parsed.options) {
      if (!o.unregistered) continue;
      const auto& key = o.string_key;
      const auto dot = key.find('.');
      if (dot == std::string::npos)
        fail(path, ": unknown top-level key '", key, "'", at(key), " (expected name, root, then ", kSections, ")");
      const auto section = key.substr(0, dot), name = key.substr(dot + 1);
      const std::string value = o.value.empty() ? std::string() : trim(o.value[0]);
      // A key under [grid.METHOD]: Boost names it grid.METHOD.KEY (training keys hold no '.'; the
      // longest METHOD with a header wins, so [grid.a.b] is reported as the method 'a.b').
      std::string method;
      if (section == "grid")
        for (const auto& [m, line] : lines.method_section_line)
          if (name.rfind(m + ".", 0) == 0 && m.size() > method.size()) method = m;
      const bool method_key = !method.empty();
      if (method_key || section == "download")
        LOPA_CHECK(seen_unregistered.insert(key).second, path, ": key '", key, "' is given more than once");
      if (method_key) {
        const auto k = name.substr(method.size() + 1);
        LOPA_CHECK(find_train_key(k), path, ": unknown training key '", k, "' in [grid.", method, "]", at(key),
                   " (lopa train --help lists the keys)");
        method_raw[method][k] = value;
        continue;
      }
      if (section == "download") {
        download_raw.emplace_back(name, value);
        continue;
      }
      if (section == "grid" || section == "fixed")
        fail(path, ": unknown training key '", name, "' in [", section, "]", at(key), " (lopa train --help lists the keys)");
      if (section == "launch")
        fail(path, ": unknown key '", name, "' in [launch]", at(key), " (known: ", join(launch_key_names(), ", "), ")");
      fail(path, ": unknown section [", section, "]", at(key), " (expected ", kSections, ")");
    }
    po::store(parsed, vm);
  } catch (const po::multiple_occurrences& e) {
    fail(path, ": key '", e.get_option_name().substr(e.get_option_name().find_first_not_of('-')), "' is given more than once");
  } catch (const po::error& e) {
    fail(path, ": ", e.what());
  }
  const auto get = [&](const std::string& key) -> std::string {
    return vm.count(key) ? trim(vm[key].as<std::string>()) : std::string();
  };

  SweepSpec spec;
  spec.path = path;
  spec.name = get("name");
  LOPA_CHECK(!spec.name.empty(), path, ": missing top-level key 'name'");
  for (char c : spec.name)
    LOPA_CHECK(std::isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.', path, ": name = '", spec.name,
               "': use letters, digits, '-', '_' and '.' only (it names SLURM jobs and files)");
  const auto root = get("root");
  LOPA_CHECK(!root.empty(), path, ": missing top-level key 'root' (where the cells' run directories go)");
  spec.root = fs::absolute(fs::path(root)).lexically_normal().string();
  while (spec.root.size() > 1 && spec.root.back() == '/') spec.root.pop_back();

  for (const auto& k : train_keys()) {
    const std::string gk = "grid." + std::string(k.name), fk = "fixed." + std::string(k.name);
    if (vm.count(gk)) {
      auto values = read_axis(path, "grid", k, get(gk), path + ": [grid]");
      LOPA_CHECK(!vm.count(fk), path, ": ", k.name, " is in both [grid] and [fixed]");
      spec.grid[k.name] = values;
    }
    if (vm.count(fk)) {
      const auto v = get(fk);
      LOPA_CHECK(!v.empty(), path, ": [fixed] ", k.name, " is empty");
      check_train_value(k, v, path + ": [fixed]");
      spec.fixed[k.name] = v;
    }
  }
  LOPA_CHECK(spec.grid.count("method") || spec.fixed.count("method"), path,
             ": no 'method' in [grid] or [fixed] (every cell needs one)");
  const std::vector<std::string> methods =
      spec.grid.count("method") ? spec.grid.at("method") : std::vector<std::string>{spec.fixed.at("method")};

  // [grid.METHOD], in the order of the section headers: the method must be one of the sweep's, and
  // each key one the method reads, not crossed in [grid] too.
  std::vector<std::pair<int, std::string>> sections;
  for (const auto& [m, line] : lines.method_section_line) sections.emplace_back(line, m);
  std::sort(sections.begin(), sections.end());
  for (const auto& [line, m] : sections) {
    LOPA_CHECK(std::find(methods.begin(), methods.end(), m) != methods.end(), path, ": [grid.", m, "] at line ", line,
               ": '", m, "' is not a method of this sweep (method = ", join(methods, ", "), ")");
    auto& axes = spec.method_grid[m];
    const auto raw = method_raw.find(m);
    if (raw == method_raw.end()) continue;  // an empty section crosses nothing
    const std::string section = "grid." + m;
    for (const auto& k : train_keys()) {
      const auto it = raw->second.find(k.name);
      if (it == raw->second.end()) continue;
      const std::string key = section + "." + k.name, where = at(key);
      LOPA_CHECK(std::string(k.name) != "method", path, ": [", section, "] method", where,
                 ": a method's own section cannot change its method");
      LOPA_CHECK(!spec.grid.count(k.name), path, ": ", k.name, " is in both [grid] and [", section, "]", where,
                 " (give it in one)");
      LOPA_CHECK(!(std::string(k.name) == "tp" && vm.count("launch.tp")), path, ": tp is in [launch] and in [", section,
                 "]", where, "; give it once");
      LOPA_CHECK(method_uses(k, m), path, ": [", section, "] ", k.name, where, " is not used by method ", m, " (",
                 k.name, " applies to ", k.methods, ")");
      axes[k.name] = read_axis(path, section, k, it->second, path + ": [" + section + "]" + where);
    }
  }
  for (const char* required : {"model", "task"}) {
    std::vector<std::string> lacking;
    for (const auto& m : methods)
      if (!spec.grid.count(required) && !spec.fixed.count(required) &&
          !(spec.method_grid.count(m) && spec.method_grid.at(m).count(required)))
        lacking.push_back(m);
    LOPA_CHECK(lacking.size() != methods.size(), path, ": no '", required, "' in [grid] or [fixed] (every cell needs one)");
    LOPA_CHECK(lacking.empty(), path, ": no '", required, "' for method ", join(lacking, ", "),
               " (give it in [grid], [fixed] or [grid.METHOD]; every cell needs one)");
  }

  // [download]: each key a checkpoint directory the spec names as a model or encoder, each value a hub id.
  std::set<std::string> checkpoint_dirs;
  for (const char* key : {"model", "encoder"}) {
    if (spec.grid.count(key))
      for (const auto& v : spec.grid.at(key)) checkpoint_dirs.insert(normal_dir(v));
    if (spec.fixed.count(key)) checkpoint_dirs.insert(normal_dir(spec.fixed.at(key)));
    for (const auto& [m, axes] : spec.method_grid)
      if (axes.count(key))
        for (const auto& v : axes.at(key)) checkpoint_dirs.insert(normal_dir(v));
  }
  std::map<std::string, std::string> download_key_of;  // normal_dir -> the key as written
  for (const auto& [dir, id] : download_raw) {
    const std::string where = at("download." + dir);
    LOPA_CHECK(!id.empty(), path, ": [download] ", dir, where, " is empty (give its Hugging Face hub id, owner/name)");
    LOPA_CHECK(is_hub_id(id), path, ": [download] ", dir, " = '", id, "'", where,
               ": not a Hugging Face hub id (expected owner/name of letters, digits, '-', '_', '.')");
    const auto norm = normal_dir(dir);
    LOPA_CHECK(checkpoint_dirs.count(norm), path, ": [download] ", dir, where,
               ": no model or encoder of this sweep is that directory (they are: ",
               join(std::vector<std::string>(checkpoint_dirs.begin(), checkpoint_dirs.end()), ", "), ")");
    const auto [it, fresh] = download_key_of.emplace(norm, dir);
    LOPA_CHECK(fresh, path, ": [download] ", dir, where, " is the same directory as '", it->second, "'");
    spec.download[norm] = id;
  }

  auto& L = spec.launch;
  const auto lget = [&](const char* key, std::string& dst) {
    if (vm.count(std::string("launch.") + key)) dst = get(std::string("launch.") + key);
  };
  const auto lint = [&](const char* key, int& dst, int min_value) {
    const std::string k = std::string("launch.") + key;
    if (vm.count(k)) dst = launch_int(path, key, get(k), min_value);
  };
  lget("executor", L.executor);
  LOPA_CHECK(L.executor == "local" || L.executor == "slurm", path, ": [launch] executor = '", L.executor,
             "': expected local or slurm");
  lint("ranks-per-cell", L.ranks_per_cell, 1);
  lint("jobs", L.jobs, 0);
  lint("max-retries", L.max_retries, 0);
  lint("max-parallel", L.max_parallel, 0);
  lint("nodes", L.nodes, 1);
  lint("gpus-per-node", L.gpus_per_node, 0);
  lint("cpus-per-task", L.cpus_per_task, 1);
  lint("signal-seconds", L.signal_seconds, 0);
  lget("mem", L.mem);
  lget("time", L.time);
  lget("partition", L.partition);
  lget("account", L.account);
  lget("qos", L.qos);
  std::string extra;
  lget("sbatch-extra", extra);
  if (!extra.empty())
    for (const auto& e : split_list(extra, ';')) {
      LOPA_CHECK(e.rfind("--", 0) == 0, path, ": [launch] sbatch-extra item '", e,
                 "': expected sbatch options like --constraint=a100, separated by ';'");
      L.sbatch_extra.push_back(e);
    }
  lget("launcher", L.launcher);
  LOPA_CHECK(L.launcher == "srun" || L.launcher == "mpirun", path, ": [launch] launcher = '", L.launcher,
             "': expected srun or mpirun");
  lget("srun-args", L.srun_args);
  lget("mpirun", L.mpirun);
  LOPA_CHECK(!L.mpirun.empty(), path, ": [launch] mpirun is empty");
  lget("mpirun-args", L.mpirun_args);
  if (vm.count("launch.cell-command")) {
    lget("cell-command", L.cell_command);
    LOPA_CHECK(!L.cell_command.empty(), path, ": [launch] cell-command is empty");
  }
  lget("report-command", L.report_command);
  lget("lopa", L.lopa);
  if (vm.count("launch.require-run-log")) {
    const auto v = get("launch.require-run-log");
    LOPA_CHECK(v == "true" || v == "false", path, ": [launch] require-run-log = '", v, "': expected true or false");
    L.require_run_log = v == "true";
  }
  if (vm.count("launch.tp")) {
    spec.launch_tp = get("launch.tp");
    check_train_value(*find_train_key("tp"), spec.launch_tp, path + ": [launch]");
    LOPA_CHECK(!spec.grid.count("tp") && !spec.fixed.count("tp"), path,
               ": tp is in [launch] and in [grid] or [fixed]; give it once");
  }
  for (const auto* cmd : {&L.cell_command, &L.report_command})
    for (char c : *cmd)
      LOPA_CHECK(c != '\n' && c != '\t', path, ": [launch] commands must be one line without tabs");
  check_command_template(L.cell_command, kCellPlaceholders, path + ": [launch] cell-command");
  check_command_template(L.report_command, kReportPlaceholders, path + ": [launch] report-command");
  return spec;
}

}  // namespace lopa::cluster
