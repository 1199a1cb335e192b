// build_report: metrics.h5 files -> seed groups -> (row, model, task) cells -> table and comparisons.
#include "results/report.h"

#include "experiments/tasks/train_keys.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "results/run_log_reader.h"
#include "runtime/base/error.h"

namespace lopa::results {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Config keys that do not make two runs different experiments: the seed, where outputs go, and how
// often checkpoints are written (a resumed run repeats the uninterrupted one exactly).
const std::set<std::string> kIgnoredKeys = {"seed",    "out",    "output",     "out-dir",     "run-dir",
                                            "root",    "config", "save-every", "save-initial"};

// Paper order first, anything else after in name order.
const std::vector<std::string> kMethodOrder = {"fft", "lora", "prefix", "pt", "idpg", "lopa"};
const std::vector<std::string> kTaskOrder = {"sst2", "rte",  "mrpc",       "qnli",      "qqp",
                                             "mnli", "mbpp", "cruxeval-i", "cruxeval-o"};

int order_of(const std::vector<std::string>& order, const std::string& x) {
  auto it = std::find(order.begin(), order.end(), x);
  return it == order.end() ? static_cast<int>(order.size()) : static_cast<int>(it - order.begin());
}

std::string primary_metric(const std::string& task) {
  if (task == "mrpc" || task == "qqp") return "f1";
  if (task == "mbpp" || task.rfind("cruxeval", 0) == 0) return "pass_at_1";
  return "accuracy";
}

bool is_fraction_metric(const std::string& metric) {
  return metric == "accuracy" || metric == "f1" || metric.rfind("pass_at_", 0) == 0 || metric == "exact_match";
}

bool lower_is_better_metric(const std::string& metric) {
  return metric.find("loss") != std::string::npos || metric == "perplexity";
}

bool uses_m(const std::string& method) {
  return method == "lopa" || method == "pt" || method == "idpg" || method == "prefix";
}
bool uses_r(const std::string& method) { return method == "lopa" || method == "lora"; }
bool known_method(const std::string& method) { return order_of(kMethodOrder, method) < (int)kMethodOrder.size(); }

std::string json_value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::string config_value(const json& config, const std::string& key) {
  auto it = config.find(key);
  return it == config.end() ? "" : json_value_text(*it);
}

std::string model_display_name(const std::string& model) {
  std::string s = model;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  const auto slash = s.find_last_of('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

// Numeric order for m and r values ("5" < "10"), text order otherwise.
bool value_less(const std::string& a, const std::string& b) {
  char* ea = nullptr;
  char* eb = nullptr;
  const double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
  const bool na = !a.empty() && *ea == 0, nb = !b.empty() && *eb == 0;
  if (na && nb && x != y) return x < y;
  if (na != nb) return na;
  return a < b;
}

// The selected value of one run: best (max, or min for a loss) or last non-NaN evaluation.
bool select_value(const std::vector<double>& series, const std::string& select, bool lower_better, double* out) {
  bool found = false;
  for (double v : series) {
    if (std::isnan(v)) continue;
    if (!found || select == "last" || (lower_better ? v < *out : v > *out)) *out = v;
    found = true;
  }
  return found;
}

struct UsableRun {
  RunData data;
  std::string method, task, model, m, r, group_key, row_key;
  std::string merged_values;  // the merge keys' values, "k=v, k=v" ("" without merge keys)
  json config_for_key;  // config minus ignored keys
  double value = 0;
  // Split mode: the metric per evaluation step on the selection and the reported split (NaN dropped).
  std::map<int64_t, double> select_at, report_at;
};

struct Group {
  std::vector<UsableRun*> runs;
  double mean = 0, std = 0;
  bool usable = true;
  int64_t step = -1;                 // split mode: the chosen evaluation step
  double select_mean = std::nan("");  // split mode: mean selection metric at that step
};

// step -> value of a series' non-NaN points.
std::map<int64_t, double> by_step(const EvalSeries& s, const std::string& metric) {
  std::map<int64_t, double> out;
  auto it = s.metrics.find(metric);
  if (it == s.metrics.end()) return out;
  for (size_t i = 0; i < s.step.size() && i < it->second.size(); ++i)
    if (!std::isnan(it->second[i])) out[s.step[i]] = it->second[i];
  return out;
}

// Split mode: the step, shared by every seed on both splits, with the best mean selection metric
// (the earliest among equals); each run's value becomes its reported metric there.
bool choose_step(Group* g, bool lower) {
  std::map<int64_t, double> sum;
  for (const auto& [step, v] : g->runs[0]->select_at) sum[step] = 0;
  for (auto it = sum.begin(); it != sum.end();) {
    bool everywhere = true;
    for (const auto* u : g->runs) everywhere = everywhere && u->select_at.count(it->first) && u->report_at.count(it->first);
    if (!everywhere) {
      it = sum.erase(it);
      continue;
    }
    for (const auto* u : g->runs) it->second += u->select_at.at(it->first);
    ++it;
  }
  if (sum.empty()) return false;
  bool found = false;
  for (const auto& [step, total] : sum) {
    const double mean = total / g->runs.size();
    if (!found || (lower ? mean < g->select_mean : mean > g->select_mean)) g->select_mean = mean, g->step = step;
    found = true;
  }
  for (auto* u : g->runs) u->value = u->report_at.at(g->step);
  return true;
}

void mean_std(const std::vector<double>& v, double* mean, double* sd) {
  double s = 0;
  for (double x : v) s += x;
  *mean = s / v.size();
  if (v.size() < 2) {
    *sd = std::nan("");
    return;
  }
  double ss = 0;
  for (double x : v) ss += (x - *mean) * (x - *mean);
  *sd = std::sqrt(ss / (v.size() - 1));
}

// Mean training loss over the runs at the steps all of them share as a common prefix.
void mean_loss_curve(const std::vector<UsableRun*>& runs, Cell* cell) {
  size_t len = SIZE_MAX;
  for (const auto* r : runs) len = std::min(len, r->data.train.step.size());
  if (runs.empty() || len == 0 || len == SIZE_MAX) return;
  const auto& ref = runs[0]->data.train.step;
  for (const auto* r : runs)
    if (!std::equal(ref.begin(), ref.begin() + len, r->data.train.step.begin())) {
      cell->loss_step = ref;  // seeds logged different steps: show the first seed's curve
      cell->loss_mean = runs[0]->data.train.loss;
      return;
    }
  cell->loss_step.assign(ref.begin(), ref.begin() + len);
  cell->loss_mean.assign(len, 0.0);
  for (const auto* r : runs)
    for (size_t i = 0; i < len; ++i) cell->loss_mean[i] += r->data.train.loss[i] / runs.size();
}

std::string human_count(int64_t n) {
  char buf[32];
  if (n < 1000) std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(n));
  else if (n < 1000000) std::snprintf(buf, sizeof(buf), "%.1fK", n / 1e3);
  else if (n < 1000000000) std::snprintf(buf, sizeof(buf), "%.2fM", n / 1e6);
  else std::snprintf(buf, sizeof(buf), "%.2fB", n / 1e9);
  return buf;
}

}  // namespace

std::string method_display_name(const std::string& method) {
  static const std::map<std::string, std::string> names = {{"lopa", "LoPA"}, {"pt", "PT"},   {"idpg", "IDPG"},
                                                           {"lora", "LoRA"}, {"fft", "FFT"}, {"prefix", "Prefix"}};
  auto it = names.find(method);
  return it == names.end() ? method : it->second;
}

std::string method_server_adapter(const std::string& method) {
  if (method == "lora" || method == "fft" || method == "prefix") return "yes";
  if (method == "pt" || method == "idpg" || method == "lopa") return "no";
  return "?";
}

const Cell* Report::cell(int row, int col) const {
  for (const auto& c : cells)
    if (c.row == row && c.col == col) return &c;
  return nullptr;
}

Report build_report(const std::string& root, const ReportOptions& options) {
  return build_report(std::vector<std::string>{root}, options);
}

Report build_report(const std::vector<std::string>& roots, const ReportOptions& options) {
  LOPA_CHECK(!roots.empty(), "lopa report: no --root given");
  for (const auto& root : roots) LOPA_CHECK(fs::is_directory(root), root, ": not a directory (--root)");
  LOPA_CHECK(options.select == "best" || options.select == "last", "--select ", options.select,
             ": expected best or last");
  LOPA_CHECK(options.select_by.empty() == options.report_split.empty(),
             "--select-by and --report go together (e.g. --select-by dev --report test)");
  // Keys that place a run in a row or a column: pooling runs that differ in them would mix rows.
  static const std::set<std::string> kStructuralKeys = {"method", "task", "model", "num-virtual-tokens", "rank"};
  std::set<std::string> merge;
  for (const auto& k : options.merge_keys) {
    LOPA_CHECK(!kStructuralKeys.count(k), "--merge-keys ", k,
               ": it places runs in the table's rows or columns; runs that differ in it cannot be pooled");
    LOPA_CHECK(!kIgnoredKeys.count(k), "--merge-keys ", k, ": runs that differ in it are always pooled already");
    const auto& keys = lopa::train_keys();
    LOPA_CHECK(std::any_of(keys.begin(), keys.end(), [&](const lopa::TrainKey& t) { return k == t.name; }),
               "--merge-keys ", k, ": not a configuration key of lopa train (see lopa train --help)");
    merge.insert(k);
  }
  const bool split_mode = !options.select_by.empty();
  Report rep;
  for (const auto& root : roots) rep.root += (rep.root.empty() ? "" : ", ") + root;
  rep.select = options.select;
  rep.select_by = options.select_by;
  rep.report_split = options.report_split;
  rep.merge_keys.assign(merge.begin(), merge.end());

  // Every metrics.h5 under the roots, once (a root inside another, or named twice, adds nothing), shown
  // relative to its root when there is one root and with the root's path when there are several.
  std::vector<std::string> paths;
  std::map<std::string, std::string> shown;
  std::set<fs::path> seen;
  for (const auto& root : roots) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
         it != end; it.increment(ec)) {
      if (ec) break;
      if (it->path().filename() != "metrics.h5") continue;
      std::error_code cec;
      const fs::path canonical = fs::weakly_canonical(it->path(), cec);
      if (!seen.insert(cec ? it->path() : canonical).second) continue;
      const std::string p = it->path().string();
      paths.push_back(p);
      shown[p] = roots.size() == 1 ? it->path().lexically_relative(root).string() : p;
    }
  }
  std::sort(paths.begin(), paths.end());
  rep.runs_found = static_cast<int>(paths.size());
  auto rel = [&](const std::string& p) {
    auto it = shown.find(p);
    return it == shown.end() ? p : it->second;
  };

  // 1. Read; keep completed runs with identity attributes.
  std::vector<UsableRun> runs;
  runs.reserve(paths.size());
  for (const auto& p : paths) {
    UsableRun u;
    try {
      u.data = RunLogReader::read(p, options.with_train);
    } catch (const std::exception& e) {
      rep.excluded.push_back({rel(p), "unreadable", e.what()});
      continue;
    }
    const std::string status = u.data.attr_string("status", "?");
    if (status != "completed") {
      const std::string err = u.data.attr_string("error");
      rep.excluded.push_back({rel(p), status, status == "running" ? "not finished (or killed)" : err.empty() ? "no error text" : err});
      continue;
    }
    u.method = u.data.attr_string("method");
    u.task = u.data.attr_string("task");
    u.model = model_display_name(u.data.attr_string("model"));
    if (u.method.empty() || u.task.empty() || u.model.empty()) {
      rep.excluded.push_back({rel(p), status, "empty method, task or model attribute"});
      continue;
    }
    runs.push_back(std::move(u));
  }

  // 2. The metric of each task's column.
  std::map<std::string, std::string> task_metric;
  for (const auto& u : runs) {
    if (task_metric.count(u.task)) continue;
    if (!options.metric.empty()) {
      task_metric[u.task] = options.metric;
      continue;
    }
    std::vector<std::string> prefs = {primary_metric(u.task), "accuracy", "f1", "pass_at_1", "loss"};
    for (const auto& want : prefs) {
      bool any = std::any_of(runs.begin(), runs.end(), [&](const UsableRun& o) {
        return o.task == u.task && o.data.eval.metrics.count(want);
      });
      if (any) {
        task_metric[u.task] = want;
        break;
      }
    }
    if (!task_metric.count(u.task)) task_metric[u.task] = primary_metric(u.task);
  }
  std::set<bool> directions;
  for (const auto& [t, m] : task_metric) directions.insert(lower_is_better_metric(m));
  rep.lower_is_better = directions.count(true) && !directions.count(false);

  // 3. Selected value, group key (config minus seed/outputs) and row key (method, m, r).
  std::vector<UsableRun*> used;
  for (auto& u : runs) {
    const std::string& metric = task_metric[u.task];
    if (split_mode) {
      bool ok = true;
      for (const auto* split : {&options.select_by, &options.report_split}) {
        auto s = u.data.splits.find(*split);
        auto& dst = split == &options.select_by ? u.select_at : u.report_at;
        if (s != u.data.splits.end()) dst = by_step(s->second, metric);
        if (dst.empty()) {
          rep.excluded.push_back({rel(u.data.path), "completed", "no evaluation of metric '" + metric + "' on split '" + *split + "'"});
          ok = false;
          break;
        }
      }
      if (!ok) continue;
    } else {
      auto it = u.data.eval.metrics.find(metric);
      if (it == u.data.eval.metrics.end() ||
          !select_value(it->second, options.select, lower_is_better_metric(metric), &u.value)) {
        rep.excluded.push_back({rel(u.data.path), "completed", "no evaluation of metric '" + metric + "'"});
        continue;
      }
    }
    const json config = u.data.config();
    u.config_for_key = json::object();
    for (auto& [k, v] : config.items())
      if (!kIgnoredKeys.count(k)) u.config_for_key[k] = v;
    // A run logged before a training key existed ran with what is now its default (else a new key
    // would split every old cell), unless the key changed behaviour when it came (value_when_absent).
    for (const auto& k : lopa::train_keys())
      if (!kIgnoredKeys.count(k.name) && !u.config_for_key.contains(k.name))
        u.config_for_key[k.name] = lopa::value_when_absent(k);
    for (const auto& k : merge) {
      u.merged_values += (u.merged_values.empty() ? "" : ", ") + k + "=" + config_value(u.config_for_key, k);
      u.config_for_key.erase(k);
    }
    if (uses_m(u.method) || !known_method(u.method)) u.m = config_value(config, "num-virtual-tokens");
    if (uses_r(u.method) || !known_method(u.method)) u.r = config_value(config, "rank");
    u.group_key = u.config_for_key.dump() + "|" + u.method + "|" + u.task + "|" + u.model;
    u.row_key = u.method + "|" + u.m + "|" + u.r;
    used.push_back(&u);
  }
  // One run per seed in a configuration: the same seed twice (two roots holding one cell, or a CPU and
  // a GPU run pooled by merge_keys) would count as two seeds. The first in path order is used.
  std::map<std::string, Group> groups;
  for (auto* u : used) {
    auto& g = groups[u->group_key];
    const int64_t seed = u->data.attr_int("seed");
    auto dup = std::find_if(g.runs.begin(), g.runs.end(), [&](const UsableRun* o) { return o->data.attr_int("seed") == seed; });
    if (dup != g.runs.end()) {
      rep.excluded.push_back({rel(u->data.path), "completed", "seed " + std::to_string(seed) +
                              " of this configuration is already in the table from " + rel((*dup)->data.path)});
      continue;
    }
    g.runs.push_back(u);
  }
  for (auto& [k, g] : groups) {
    if (split_mode && !choose_step(&g, lower_is_better_metric(task_metric[g.runs[0]->task]))) {
      g.usable = false;
      for (const auto* u : g.runs)
        rep.excluded.push_back({rel(u->data.path), "completed", "no evaluation step on both '" + options.select_by +
                                "' and '" + options.report_split + "' shared by every seed of its configuration"});
      continue;
    }
    std::vector<double> v;
    for (const auto* u : g.runs) v.push_back(u->value);
    mean_std(v, &g.mean, &g.std);
  }
  for (auto it = groups.begin(); it != groups.end();) it = it->second.usable ? std::next(it) : groups.erase(it);
  used.clear();
  for (auto& [k, g] : groups) used.insert(used.end(), g.runs.begin(), g.runs.end());
  rep.runs_used = static_cast<int>(used.size());

  // 4. Rows and columns, in paper order.
  std::map<std::string, Row> row_by_key;
  std::set<std::pair<std::string, std::string>> col_keys;  // (model, task)
  for (const auto* u : used) {
    Row& row = row_by_key[u->row_key];
    row.method = u->method;
    row.m = u->m;
    row.r = u->r;
    row.server_adapter = method_server_adapter(u->method);
    row.trainable_params.emplace(u->model, u->data.attr_int("trainable_params"));
    col_keys.insert({u->model, u->task});
  }
  for (auto& [k, row] : row_by_key) {
    row.label = method_display_name(row.method);
    std::string hp;
    if (!row.m.empty()) hp += "m=" + row.m;
    if (!row.r.empty()) hp += (hp.empty() ? "" : ", ") + std::string("r=") + row.r;
    if (!hp.empty()) row.label += " (" + hp + ")";
    rep.rows.push_back(row);
  }
  std::sort(rep.rows.begin(), rep.rows.end(), [](const Row& a, const Row& b) {
    const int oa = order_of(kMethodOrder, a.method), ob = order_of(kMethodOrder, b.method);
    if (oa != ob) return oa < ob;
    if (a.method != b.method) return a.method < b.method;
    if (a.m != b.m) return value_less(a.m, b.m);
    return value_less(a.r, b.r);
  });
  for (const auto& [model, task] : col_keys) rep.cols.push_back({model, task, task_metric[task]});
  std::sort(rep.cols.begin(), rep.cols.end(), [](const Column& a, const Column& b) {
    if (a.model != b.model) return a.model < b.model;
    const int oa = order_of(kTaskOrder, a.task), ob = order_of(kTaskOrder, b.task);
    return oa != ob ? oa < ob : a.task < b.task;
  });
  auto row_index = [&](const std::string& method, const std::string& m, const std::string& r) {
    for (size_t i = 0; i < rep.rows.size(); ++i)
      if (rep.rows[i].method == method && rep.rows[i].m == m && rep.rows[i].r == r) return static_cast<int>(i);
    return -1;
  };
  auto col_index = [&](const std::string& model, const std::string& task) {
    for (size_t i = 0; i < rep.cols.size(); ++i)
      if (rep.cols[i].model == model && rep.cols[i].task == task) return static_cast<int>(i);
    return -1;
  };

  // 5. Cells: the groups of one (row, column); when several configurations (e.g. learning rates)
  // share a cell, the best mean is shown and the others are named in a note.
  std::map<std::pair<int, int>, std::vector<const Group*>> cell_groups;
  for (const auto& [k, g] : groups) {
    const UsableRun* u = g.runs[0];
    cell_groups[{row_index(u->method, u->m, u->r), col_index(u->model, u->task)}].push_back(&g);
  }
  for (const auto& [rc, gs] : cell_groups) {
    const bool lower = lower_is_better_metric(rep.cols[rc.second].metric);
    // Split mode chooses by the selection split, never by the values shown.
    const auto score = [&](const Group* g) { return split_mode ? g->select_mean : g->mean; };
    const Group* best = gs[0];
    for (const Group* g : gs)
      if (lower ? score(g) < score(best) : score(g) > score(best)) best = g;
    Cell c;
    c.row = rc.first;
    c.col = rc.second;
    for (const auto* u : best->runs) {
      c.values.push_back(u->value);
      c.seeds.push_back(u->data.attr_int("seed"));
    }
    c.mean = best->mean;
    c.std = best->std;
    c.n = static_cast<int>(best->runs.size());
    c.num_configs = static_cast<int>(gs.size());
    c.selected_step = best->step;
    c.select_mean = best->select_mean;
    if (gs.size() > 1) {
      // The keys whose values differ between the groups of this cell, with the chosen group's values.
      std::set<std::string> keys;
      for (const Group* g : gs)
        for (auto& [k, v] : g->runs[0]->config_for_key.items()) keys.insert(k);
      std::string chosen;
      for (const auto& k : keys) {
        std::set<std::string> vals;
        for (const Group* g : gs) vals.insert(config_value(g->runs[0]->config_for_key, k));
        if (vals.size() > 1) chosen += (chosen.empty() ? "" : ", ") + k + "=" + config_value(best->runs[0]->config_for_key, k);
      }
      c.chosen_config = chosen;
      if (!split_mode)
        rep.notes.push_back(rep.rows[c.row].label + " on " + rep.cols[c.col].model + "/" + rep.cols[c.col].task + ": " +
                            std::to_string(gs.size()) + " configurations; shown the best by mean (" + chosen +
                            "), chosen on the values shown");
    }
    if (split_mode && c.chosen_config.empty()) c.chosen_config = "lr=" + config_value(best->runs[0]->config_for_key, "lr");
    std::map<std::string, std::vector<int64_t>> merged_seeds;  // merge keys' values -> seeds
    for (const auto* u : best->runs) merged_seeds[u->merged_values].push_back(u->data.attr_int("seed"));
    if (merged_seeds.size() > 1) {
      for (auto& [values, seeds] : merged_seeds) {
        std::sort(seeds.begin(), seeds.end());
        c.merged += std::string(c.merged.empty() ? "" : "; ") + values + " (seed" + (seeds.size() == 1 ? "" : "s");
        for (size_t i = 0; i < seeds.size(); ++i) c.merged += (i ? ", " : " ") + std::to_string(seeds[i]);
        c.merged += ")";
      }
      rep.notes.push_back(rep.rows[c.row].label + " on " + rep.cols[c.col].model + "/" + rep.cols[c.col].task +
                          ": pooled over " + c.merged);
    }
    if (options.with_train) mean_loss_curve(best->runs, &c);
    rep.cells.push_back(std::move(c));
  }
  std::sort(rep.cells.begin(), rep.cells.end(),
            [](const Cell& a, const Cell& b) { return a.row != b.row ? a.row < b.row : a.col < b.col; });

  // 6. Best mean per column (all tied cells are marked).
  for (size_t col = 0; col < rep.cols.size(); ++col) {
    const bool lower = lower_is_better_metric(rep.cols[col].metric);
    const Cell* best = nullptr;
    for (const auto& c : rep.cells)
      if (c.col == (int)col && (!best || (lower ? c.mean < best->mean : c.mean > best->mean))) best = &c;
    for (auto& c : rep.cells)
      if (best && c.col == (int)col && c.mean == best->mean) c.best = true;
  }

  // 7. LoPA against every other method, per (task, model) cell, each method at its best row there
  // (split mode: the row with the best selection metric).
  auto best_cell = [&](const std::string& method, int col) -> const Cell* {
    const bool lower = lower_is_better_metric(rep.cols[col].metric);
    const Cell* best = nullptr;
    for (const auto& c : rep.cells) {
      if (c.col != col || rep.rows[c.row].method != method) continue;
      const double x = split_mode ? c.select_mean : c.mean, y = best ? (split_mode ? best->select_mean : best->mean) : 0;
      if (!best || (lower ? x < y : x > y)) best = &c;
    }
    return best;
  };
  auto method_best = [&](const std::string& method, int col, double* out) {
    const Cell* c = best_cell(method, col);
    if (c) *out = c->mean;
    return c != nullptr;
  };
  std::vector<std::string> methods;
  for (const auto& row : rep.rows)
    if (std::find(methods.begin(), methods.end(), row.method) == methods.end()) methods.push_back(row.method);
  if (std::find(methods.begin(), methods.end(), "lopa") != methods.end()) {
    for (const auto& other : methods) {
      if (other == "lopa") continue;
      Comparison cmp;
      cmp.other = other;
      double rel_sum = 0;
      for (size_t col = 0; col < rep.cols.size(); ++col) {
        double a = 0, b = 0;
        if (!method_best("lopa", col, &a) || !method_best(other, col, &b)) continue;
        const bool lower = lower_is_better_metric(rep.cols[col].metric);
        ++cmp.cells;
        if (a == b) ++cmp.ties;
        else if (lower ? a < b : a > b) ++cmp.wins;
        if (b != 0) rel_sum += (lower ? b - a : a - b) / std::fabs(b);
      }
      cmp.mean_rel_improvement = cmp.cells ? rel_sum / cmp.cells : 0;
      rep.comparisons.push_back(cmp);
    }
  }

  // 8. Paired comparisons per column, seed by seed: LoPA against each other method, or every pair.
  const bool has_lopa = std::find(methods.begin(), methods.end(), "lopa") != methods.end();
  for (size_t col = 0; col < rep.cols.size(); ++col) {
    const bool lower = lower_is_better_metric(rep.cols[col].metric);
    for (size_t i = 0; i < methods.size(); ++i)
      for (size_t j = i + 1; j < methods.size(); ++j) {
        std::string a = methods[i], b = methods[j];
        if (has_lopa && a != "lopa" && b != "lopa") continue;
        if (b == "lopa") std::swap(a, b);
        const Cell* ca = best_cell(a, col);
        const Cell* cb = best_cell(b, col);
        if (!ca || !cb) continue;
        std::map<int64_t, double> va, vb;
        for (size_t k = 0; k < ca->values.size(); ++k) va[ca->seeds[k]] = ca->values[k];
        for (size_t k = 0; k < cb->values.size(); ++k) vb[cb->seeds[k]] = cb->values[k];
        auto p = paired_comparison(va, vb, lower);
        if (p.pairs == 0) continue;
        p.col = static_cast<int>(col);
        p.a = a;
        p.b = b;
        rep.paired.push_back(p);
      }
  }
  return rep;
}

double t_critical_975(int df) {
  LOPA_CHECK(df >= 1, "t_critical_975: df must be >= 1, got ", df);
  // Student's t, 97.5 % quantile (two-sided 5 %), df 1..30 from the standard table.
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (df <= 30) return table[df - 1];
  if (df <= 40) return 2.021;
  if (df <= 60) return 2.000;
  if (df <= 120) return 1.980;
  return 1.960;
}

PairedComparison paired_comparison(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b,
                                   bool lower_is_better) {
  PairedComparison p;
  std::vector<double> d;
  for (const auto& [seed, x] : a) {
    auto it = b.find(seed);
    if (it == b.end()) continue;
    const double diff = lower_is_better ? it->second - x : x - it->second;
    d.push_back(diff);
    if (diff > 0) ++p.wins;
    else if (diff < 0) ++p.losses;
    else ++p.ties;
  }
  p.pairs = static_cast<int>(d.size());
  if (d.empty()) return p;
  mean_std(d, &p.mean_diff, &p.sd_diff);
  if (p.pairs < 2) return p;
  if (p.sd_diff > 0) {
    p.t = p.mean_diff / (p.sd_diff / std::sqrt(static_cast<double>(p.pairs)));
    p.exceeds_noise = std::fabs(p.t) > t_critical_975(p.pairs - 1);
  } else {
    // Every seed moved by the same amount: no noise at all, so any difference exceeds it.
    p.t = p.mean_diff == 0 ? 0 : std::copysign(INFINITY, p.mean_diff);
    p.exceeds_noise = p.mean_diff != 0;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Formatting.

namespace {

std::string fmt_value(double v, const std::string& metric) {
  char buf[64];
  if (std::isnan(v)) return "nan";
  if (is_fraction_metric(metric)) std::snprintf(buf, sizeof(buf), "%.2f", 100 * v);
  else std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

std::string metric_header(const std::string& metric) {
  return is_fraction_metric(metric) ? metric + " %" : metric;
}

std::string params_text(const Report& rep, const Row& row) {
  std::string out;
  std::set<std::string> models;
  for (const auto& c : rep.cols) models.insert(c.model);
  for (const auto& model : models) {
    auto it = row.trainable_params.find(model);
    if (it == row.trainable_params.end()) continue;
    out += (out.empty() ? "" : " / ") + human_count(it->second);
  }
  return out;
}

bool several_models(const Report& rep) {
  for (const auto& c : rep.cols)
    if (c.model != rep.cols[0].model) return true;
  return false;
}

std::string col_title(const Report& rep, const Column& c) {
  return several_models(rep) ? c.model + "/" + c.task : c.task;
}

std::string cell_text(const Cell& c, const std::string& metric) {
  std::string s = fmt_value(c.mean, metric);
  if (c.n > 1) s += " ± " + fmt_value(c.std, metric);
  return s;
}

std::string latex_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '_' || ch == '%' || ch == '&' || ch == '#' || ch == '$' || ch == '{' || ch == '}') out += '\\';
    out += ch;
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string caption(const Report& rep) {
  std::set<std::string> metrics;
  for (const auto& c : rep.cols) metrics.insert(metric_header(c.metric));
  std::string m;
  for (const auto& x : metrics) m += (m.empty() ? "" : ", ") + x;
  std::string how;
  if (rep.select_by.empty()) {
    how = rep.select + " evaluation of each run" +
          (rep.select == "best" ? " (chosen on the split shown: optimistic; see --select-by)" : std::string());
  } else {
    how = "on " + rep.report_split + ", at the configuration and evaluation step with the best mean " + rep.select_by +
          " value over seeds in each cell" +
          (rep.select_by == rep.report_split ? " (selected on the split shown: optimistic)" : std::string());
  }
  std::string pooled;
  for (const auto& k : rep.merge_keys) pooled += (pooled.empty() ? "" : ", ") + k;
  if (!pooled.empty()) pooled = "; runs that differ only in " + pooled + " are pooled (see the notes)";
  return m + "; " + how + "; mean ± sample std (n-1) over seeds, n = seeds; best mean per column marked; " +
         std::to_string(rep.runs_used) + " of " + std::to_string(rep.runs_found) + " runs used" + pooled;
}

std::string fmt_signed(double v, const std::string& metric) {
  char buf[64];
  if (is_fraction_metric(metric)) std::snprintf(buf, sizeof(buf), "%+.2f points", 100 * v);
  else std::snprintf(buf, sizeof(buf), "%+.4g", v);
  return buf;
}

std::string paired_text(const Report& rep, const PairedComparison& p) {
  const Column& col = rep.cols[p.col];
  const std::string metric = col.metric;
  std::ostringstream os;
  os << col_title(rep, col) << ": " << method_display_name(p.a) << " vs " << method_display_name(p.b) << " over "
     << p.pairs << " paired seed" << (p.pairs == 1 ? "" : "s") << ": " << method_display_name(p.a) << " better in "
     << p.wins << ", worse in " << p.losses << ", tied in " << p.ties << "; mean difference "
     << fmt_signed(p.mean_diff, metric);
  if (p.pairs < 2) {
    os << " (one seed: no noise estimate)";
  } else {
    char buf[96];
    std::snprintf(buf, sizeof(buf), " (sd %.4g%s, t = %.2f, df %d)", is_fraction_metric(metric) ? 100 * p.sd_diff : p.sd_diff,
                  is_fraction_metric(metric) ? " points" : "", p.t, p.pairs - 1);
    os << buf << (p.exceeds_noise ? ": exceeds the seed noise" : ": within the seed noise") << " (paired t, 5 %)";
  }
  return os.str();
}

}  // namespace

std::string format_report_notes(const Report& rep) {
  std::ostringstream os;
  if (rep.comparisons.empty()) {
    os << "LoPA comparison: no LoPA runs in the table\n";
  } else {
    os << "LoPA vs other methods (per (task, model) cell, each method at its best row; relative improvement = "
          "(LoPA - X) / |X| of the cell means, averaged over the cells):\n";
    for (const auto& c : rep.comparisons) {
      char buf[256];
      std::snprintf(buf, sizeof(buf), "  LoPA vs %s: LoPA better in %d of %d cells (%d ties); mean relative improvement %+.2f%%\n",
                    method_display_name(c.other).c_str(), c.wins, c.cells, c.ties, 100 * c.mean_rel_improvement);
      os << buf;
    }
  }
  if (!rep.paired.empty()) {
    os << "Paired comparisons per column (each method at its best row"
       << (rep.select_by.empty() ? "" : " by " + rep.select_by) << "; difference = first - second on "
       << (rep.select_by.empty() ? std::string("the values shown") : rep.report_split) << ", positive = first better):\n";
    for (const auto& p : rep.paired) os << "  " << paired_text(rep, p) << "\n";
  }
  if (!rep.select_by.empty()) {
    os << "Selected in each cell (by the mean " << rep.select_by << " value over seeds):\n";
    for (const auto& c : rep.cells) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%s", fmt_value(c.select_mean, rep.cols[c.col].metric).c_str());
      os << "  " << rep.rows[c.row].label << " on " << col_title(rep, rep.cols[c.col]) << ": " << c.chosen_config
         << ", step " << c.selected_step << ", " << c.n << " seed" << (c.n == 1 ? "" : "s") << ", " << rep.select_by
         << " " << buf << " (" << c.num_configs << " configuration" << (c.num_configs == 1 ? "" : "s") << " compared)\n";
    }
  }
  for (const auto& n : rep.notes) os << "note: " << n << "\n";
  os << "runs not in the table: " << rep.excluded.size() << "\n";
  for (const auto& e : rep.excluded) os << "  " << e.path << "  [" << e.status << "]  " << e.reason << "\n";
  return os.str();
}

std::string format_report(const Report& rep, const std::string& format) {
  std::ostringstream os;
  if (format == "md") {
    os << "# Results under " << rep.root << "\n\n" << caption(rep) << ".\n\n";
    os << "| Method | Params | Server adapter |";
    for (const auto& c : rep.cols) os << " " << col_title(rep, c) << " (" << metric_header(c.metric) << ") |";
    os << "\n|---|---:|:---:|";
    for (size_t i = 0; i < rep.cols.size(); ++i) os << "---:|";
    os << "\n";
    for (size_t r = 0; r < rep.rows.size(); ++r) {
      os << "| " << rep.rows[r].label << " | " << params_text(rep, rep.rows[r]) << " | " << rep.rows[r].server_adapter << " |";
      for (size_t c = 0; c < rep.cols.size(); ++c) {
        const Cell* cell = rep.cell(r, c);
        if (!cell) {
          os << " – |";
          continue;
        }
        const std::string t = cell_text(*cell, rep.cols[c].metric);
        os << " " << (cell->best ? "**" + t + "**" : t) << " (" << cell->n;
        if (!rep.select_by.empty()) os << "; " << cell->chosen_config << ", step " << cell->selected_step;
        os << ") |";
      }
      os << "\n";
    }
    os << "\n## Comparison and excluded runs\n\n```\n" << format_report_notes(rep) << "```\n";
  } else if (format == "csv") {
    os << "method,label,m,r,trainable_params,server_adapter";
    for (const auto& c : rep.cols) {
      const std::string t = col_title(rep, c) + " " + c.metric;
      os << "," << csv_field(t + " mean") << "," << csv_field(t + " std") << "," << csv_field(t + " n");
      if (!rep.select_by.empty()) os << "," << csv_field(t + " selected") << "," << csv_field(t + " step");
    }
    os << "\n";
    for (size_t r = 0; r < rep.rows.size(); ++r) {
      const Row& row = rep.rows[r];
      std::string params;
      for (const auto& [model, n] : row.trainable_params)
        params += (params.empty() ? "" : ";") + (several_models(rep) ? model + "=" : std::string()) + std::to_string(n);
      os << row.method << "," << csv_field(row.label) << "," << row.m << "," << row.r << "," << csv_field(params) << ","
         << row.server_adapter;
      for (size_t c = 0; c < rep.cols.size(); ++c) {
        const Cell* cell = rep.cell(r, c);
        char buf[96];
        if (!cell) os << (rep.select_by.empty() ? ",,," : ",,,,,");
        else {
          std::snprintf(buf, sizeof(buf), ",%.12g,%.12g,%d", cell->mean, cell->std, cell->n);
          os << buf;
          if (!rep.select_by.empty()) os << "," << csv_field(cell->chosen_config) << "," << cell->selected_step;
        }
      }
      os << "\n";
    }
  } else if (format == "latex") {
    const bool multi = several_models(rep);
    os << "% lopa report over " << rep.root << "\n";
    std::string cap = latex_escape(caption(rep));
    for (size_t p; (p = cap.find("±")) != std::string::npos;) cap.replace(p, std::string("±").size(), "$\\pm$");
    os << "\\begin{table}[t]\n\\centering\n\\caption{" << cap << "}\n";
    os << "\\begin{tabular}{lrc" << std::string(rep.cols.size(), 'c') << "}\n\\hline\n";
    if (multi) {
      os << " & & ";
      for (size_t i = 0; i < rep.cols.size();) {
        size_t j = i;
        while (j < rep.cols.size() && rep.cols[j].model == rep.cols[i].model) ++j;
        os << " & \\multicolumn{" << (j - i) << "}{c}{" << latex_escape(rep.cols[i].model) << "}";
        i = j;
      }
      os << " \\\\\n";
    }
    os << "Method & Params & Server adapter";
    for (const auto& c : rep.cols) os << " & " << latex_escape(c.task);
    os << " \\\\\n\\hline\n";
    for (size_t r = 0; r < rep.rows.size(); ++r) {
      os << latex_escape(rep.rows[r].label) << " & " << params_text(rep, rep.rows[r]) << " & " << rep.rows[r].server_adapter;
      for (size_t c = 0; c < rep.cols.size(); ++c) {
        const Cell* cell = rep.cell(r, c);
        if (!cell) {
          os << " & --";
          continue;
        }
        std::string t = fmt_value(cell->mean, rep.cols[c].metric);
        if (cell->n > 1) t += " $\\pm$ " + fmt_value(cell->std, rep.cols[c].metric);
        os << " & " << (cell->best ? "\\textbf{" + t + "}" : t);
      }
      os << " \\\\\n";
    }
    os << "\\hline\n\\end{tabular}\n\\end{table}\n";
    std::istringstream notes(format_report_notes(rep));
    for (std::string line; std::getline(notes, line);) os << "% " << line << "\n";
  } else {
    fail("--format ", format, ": expected md, csv or latex");
  }
  return os.str();
}

}  // namespace lopa::results
