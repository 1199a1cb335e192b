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

// Byte offset of the first invalid UTF-8 sequence in `s` (overlong forms, surrogates and code points
// above U+10FFFF are invalid), or npos.
size_t invalid_utf8_at(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = (unsigned char)s[i];
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) n = 1, cp = c;
    else if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
    else return i;
    if (i + n > s.size()) return i;
    for (size_t k = 1; k < n; ++k) {
      const unsigned char d = (unsigned char)s[i + k];
      if ((d & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3F);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n;
  }
  return std::string::npos;
}

// The lines of the spec as Boost's config parser sees them (comments from '#', trimmed), checked
// before it runs: Boost silently drops a section header with no keys under it, names no lines, and
// passes bytes through unchecked. Returns the line of each "section.key" (top-level keys without a
// section) for later messages.
std::map<std::string, int> scan_spec_lines(const std::string& path, const std::string& text) {
  std::map<std::string, int> line_of;
  std::istringstream in(text);
  std::string raw, section;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    const size_t bad = invalid_utf8_at(raw);
    LOPA_CHECK(bad == std::string::npos, path, ": line ", n, ": invalid UTF-8 at byte ", bad + 1);
    LOPA_CHECK(raw.find('\0') == std::string::npos, path, ": line ", n, ": NUL byte");
    std::string line = raw.substr(0, raw.find('#'));
    line = trim(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      LOPA_CHECK(line.back() == ']', path, ": line ", n, ": '", line, "': a section header is [name]");
      section = line.substr(1, line.size() - 2);
      // Before Boost reads the file, which drops a section without keys (an empty unknown section at
      // the end was accepted).
      LOPA_CHECK(section == "grid" || section == "fixed" || section == "launch", path, ": unknown section [", section,
                 "] at line ", n, " (expected [grid], [fixed], [launch])");
      continue;
    }
    const size_t eq = line.find('=');
    LOPA_CHECK(eq != std::string::npos && !trim(line.substr(0, eq)).empty(), path, ": line ", n, ": '", line,
               "': expected KEY = VALUE or a [section] header");
    const std::string key = (section.empty() ? "" : section + ".") + trim(line.substr(0, eq));
    line_of.emplace(key, n);
  }
  return line_of;
}

}  // namespace

SweepSpec read_sweep_spec(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  LOPA_CHECK(file, path, ": cannot open sweep spec");
  std::stringstream text;
  text << file.rdbuf();
  LOPA_CHECK(!file.bad(), path, ": cannot read sweep spec");
  const auto line_of = scan_spec_lines(path, text.str());
  const auto at = [&](const std::string& key) {
    const auto it = line_of.find(key);
    return it == line_of.end() ? std::string() : " at line " + std::to_string(it->second);
  };
  std::istringstream in(text.str());

  // Every section.key the spec may hold is declared as a string option: grid.K and fixed.K for each
  // training key K, launch.K for each launch key, and the two top-level keys.
  po::options_description desc;
  desc.add_options()("name", po::value<std::string>())("root", po::value<std::string>());
  for (const auto& k : train_keys()) {
    desc.add_options()(("grid." + std::string(k.name)).c_str(), po::value<std::string>());
    desc.add_options()(("fixed." + std::string(k.name)).c_str(), po::value<std::string>());
  }
  for (const auto& k : launch_key_names()) desc.add_options()(("launch." + k).c_str(), po::value<std::string>());

  po::variables_map vm;
  try {
    const auto parsed = po::parse_config_file(in, desc, /*allow_unregistered=*/true);
    for (const auto& o : parsed.options) {
      if (!o.unregistered) continue;
      const auto& key = o.string_key;
      const auto dot = key.find('.');
      if (dot == std::string::npos)
        fail(path, ": unknown top-level key '", key, "'", at(key), " (expected name, root, then [grid], [fixed], [launch])");
      const auto section = key.substr(0, dot), name = key.substr(dot + 1);
      if (section == "grid" || section == "fixed")
        fail(path, ": unknown training key '", name, "' in [", section, "]", at(key), " (lopa train --help lists the keys)");
      if (section == "launch")
        fail(path, ": unknown key '", name, "' in [launch]", at(key), " (known: ", join(launch_key_names(), ", "), ")");
      fail(path, ": unknown section [", section, "]", at(key), " (expected [grid], [fixed], [launch])");
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
      const auto raw = get(gk);
      LOPA_CHECK(!raw.empty(), path, ": [grid] ", k.name, " is empty (give one or more comma-separated values)");
      auto values = split_list(raw);
      std::set<std::string> seen;
      for (const auto& v : values) {
        LOPA_CHECK(!v.empty(), path, ": [grid] ", k.name, " = '", raw, "': empty value in the list");
        LOPA_CHECK(seen.insert(v).second, path, ": [grid] ", k.name, " = '", raw, "': value '", v, "' is listed twice");
        check_train_value(k, v, path + ": [grid]");
      }
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
  for (const char* required : {"model", "task", "method"})
    LOPA_CHECK(spec.grid.count(required) || spec.fixed.count(required), path, ": no '", required,
               "' in [grid] or [fixed] (every cell needs one)");

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
