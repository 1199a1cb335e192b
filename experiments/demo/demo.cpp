#include "experiments/demo/demo.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "experiments/tasks/synthetic_task.h"
#include "experiments/tasks/train_keys.h"
#include "results/report.h"
#include "results/run_log_reader.h"
#include "runtime/base/error.h"
#include "runtime/io/atomic_file.h"

namespace lopa {

void write_synth_facts_data(const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const char* split : {"train", "dev", "test"}) {
    std::string text;
    for (const auto& ex : load_synth_facts(split).examples) {
      nlohmann::ordered_json j = {{"id", ex.id}, {"prompt", synth_facts_prompt(ex)}, {"answer", ex.label},
                                  {"person", ex.fields.at("person")}, {"relation", ex.fields.at("relation")}};
      text += j.dump() + "\n";
    }
    write_file_atomic(dir + "/" + split + ".jsonl", text);
  }
}

const std::map<std::string, std::string>& demo_default_lr_grids() {
  static const std::map<std::string, std::string> grids = {
      {"pt", "0.1, 0.03, 0.01"}, {"idpg", "0.003, 0.001, 0.0003"}, {"lopa", "0.01, 0.003, 0.001"},
      {"lora", "0.01, 0.003, 0.001"}};
  return grids;
}

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// "a, b ,,c" -> {"a", "b", "c"}: trimmed, empty items dropped.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!trim(item).empty()) out.push_back(trim(item));
  return out;
}

// Whether `method` reads `key`: a spec may not fix a key that none of its cells uses (PT has no rank).
bool used_by(const char* key, const std::string& method) {
  const TrainKey* k = find_train_key(key);
  LOPA_CHECK(k, "experiments/tasks/train_keys.h: no key '", key, "'");
  if (!*k->methods) return true;
  const auto ms = split_list(k->methods);
  return std::find(ms.begin(), ms.end(), method) != ms.end();
}

std::string join(const std::vector<std::string>& v) {
  std::string j;
  for (const auto& x : v) j += (j.empty() ? "" : ", ") + x;
  return j;
}

}  // namespace

void parse_lr_grid_option(const std::string& value, std::map<std::string, std::string>& grids) {
  const auto eq = value.find('=');
  LOPA_CHECK(eq != std::string::npos && !trim(value.substr(0, eq)).empty(), "lopa demo: --lr '", value,
             "': expected METHOD=LR[,LR...], e.g. lopa=0.01,0.003");
  const auto rates = split_list(value.substr(eq + 1));
  LOPA_CHECK(!rates.empty(), "lopa demo: --lr '", value, "': no learning rate after '='");
  grids[trim(value.substr(0, eq))] = join(rates);
}

std::vector<std::string> write_demo_specs(const DemoSweepOptions& o) {
  const int64_t eval_every = o.eval_every != 0 ? o.eval_every : std::max<int64_t>(1, o.steps / 4);
  const auto methods = split_list(o.methods);
  LOPA_CHECK(!methods.empty(), "lopa demo: --methods is empty");
  for (size_t i = 0; i < methods.size(); ++i)
    LOPA_CHECK(std::find(methods.begin(), methods.begin() + i, methods[i]) == methods.begin() + i,
               "lopa demo: --methods names '", methods[i], "' twice");

  std::filesystem::create_directories(o.out);
  std::vector<std::string> paths;
  for (const auto& method : methods) {
    std::string grid;
    if (auto it = o.lr_grids.find(method); it != o.lr_grids.end()) grid = it->second;
    else if (auto d = demo_default_lr_grids().find(method); d != demo_default_lr_grids().end()) grid = d->second;
    LOPA_CHECK(!grid.empty(), "lopa demo: no learning-rate grid for method '", method, "' (give --lr ", method,
               "=LR[,LR...])");
    std::ostringstream s;
    s << "# Written by lopa demo: " << method << " over its own learning rates, selected on dev, reported on test.\n"
      << "name = demo-" << method << "\nroot = " << o.out << "/runs/" << method << "\n\n"
      << "[grid]\nmodel = " << o.fm << "\ntask = synth-facts\nmethod = " << method << "\nlr = " << grid
      << "\nseed = " << o.seeds << "\n\n"
      << "[fixed]\nmax-steps = " << o.steps << "\neval-every = " << eval_every << "\neval-split = dev,test"
      << "\nbatch-size = " << o.batch_size;
    if (used_by("rank", method)) s << "\nrank = " << o.rank;
    if (used_by("num-virtual-tokens", method)) s << "\nnum-virtual-tokens = " << o.num_virtual_tokens;
    if (used_by("prompt-init", method)) s << "\nprompt-init = vocab";
    s << "\nmax-length = 32\neval-batch-size = 72\nschedule = linear\nwarmup-steps = "
      << std::max<int64_t>(1, o.steps / 10) << "\ndevice = cpu\n\n"
      << "[launch]\nexecutor = local\nranks-per-cell = " << o.ranks << "\ntp = " << o.tp
      // Every evaluation during training already scored dev and test: no separate `lopa eval`.
      << "\ncell-command = {launch} {lopa} train --config {config} --out {run_dir}\nreport-command =\n";
    paths.push_back(o.out + "/sweep-" + method + ".ini");
    write_file_atomic(paths.back(), s.str());
  }
  return paths;
}

std::vector<LrPoint> demo_lr_curve(const std::string& runs_root) {
  // (method, lr) -> seed -> step -> dev accuracy
  std::map<std::pair<std::string, double>, std::map<int64_t, std::map<int64_t, double>>> dev;
  if (!std::filesystem::is_directory(runs_root)) return {};
  for (const auto& e : std::filesystem::recursive_directory_iterator(runs_root)) {
    if (e.path().filename() != "metrics.h5") continue;
    results::RunData d;
    try {
      d = results::RunLogReader::read(e.path().string(), false);
    } catch (const Error&) {
      continue;  // the report lists unreadable runs; the curve leaves them out
    }
    if (d.attr_string("status") != "completed" || !d.splits.count("dev")) continue;
    const auto cfg = d.config();
    double lr = NAN;
    if (cfg.contains("lr")) {
      const auto& v = cfg["lr"];
      lr = v.is_number() ? v.get<double>() : v.is_string() ? std::strtod(v.get<std::string>().c_str(), nullptr) : NAN;
    }
    if (!std::isfinite(lr) || !d.splits.at("dev").metrics.count("accuracy")) continue;
    const auto& s = d.splits.at("dev");
    auto& steps = dev[{d.attr_string("method"), lr}][d.attr_int("seed")];
    for (size_t i = 0; i < s.step.size(); ++i)
      if (std::isfinite(s.metrics.at("accuracy")[i])) steps[s.step[i]] = s.metrics.at("accuracy")[i];
  }
  std::vector<LrPoint> out;
  for (const auto& [key, seeds] : dev) {
    // The steps every seed evaluated; the best mean over them.
    std::map<int64_t, std::pair<double, int>> sum;
    for (const auto& [seed, steps] : seeds)
      for (const auto& [step, v] : steps) sum[step].first += v, ++sum[step].second;
    LrPoint p{key.first, key.second, -1, static_cast<int>(seeds.size())};
    for (const auto& [step, sv] : sum)
      if (sv.second == p.seeds) p.dev = std::max(p.dev, sv.first / sv.second);
    if (p.dev >= 0) out.push_back(p);
  }
  return out;
}

namespace {

// The lr of a split-mode cell ("lr=0.003, ..." in chosen_config), "" when absent.
std::string chosen_lr(const results::Cell& c) {
  const auto at = c.chosen_config.find("lr=");
  if (at == std::string::npos) return "";
  const auto end = c.chosen_config.find(',', at);
  return c.chosen_config.substr(at + 3, end == std::string::npos ? std::string::npos : end - at - 3);
}

std::string pct(double v, int digits = 1) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << 100 * v;
  return o.str();
}

std::string quoted(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) o += ch == '"' || ch == '\\' ? std::string("\\") + ch : std::string(1, ch);
  return o + "\"";
}

// The method's colour in every panel; LoPA in red, as results/plot.cpp draws it.
std::string colour(const std::string& method) {
  static const std::map<std::string, std::string> c = {{"lopa", "#d62728"}, {"pt", "#1f77b4"}, {"idpg", "#2ca02c"},
                                                       {"lora", "#9467bd"}, {"prefix", "#ff7f0e"}, {"fft", "#7f7f7f"}};
  auto it = c.find(method);
  return it == c.end() ? "#000000" : it->second;
}

}  // namespace

std::string demo_summary(const results::Report& rep, const std::vector<LrPoint>& curve,
                         const std::map<std::string, std::string>& grids, double unadapted_dev) {
  std::vector<const results::Cell*> cells;
  for (const auto& c : rep.cells) cells.push_back(&c);
  std::stable_sort(cells.begin(), cells.end(), [](auto* a, auto* b) { return a->mean > b->mean; });
  std::ostringstream os;
  os << "Demo summary: each method at the learning rate of its grid with the best mean dev accuracy over seeds "
        "(and that rate's best evaluation step); test accuracy of that choice, mean ± sample std over seeds. "
        "Ranked by test mean.\n\n"
     << "| Method | lr grid | selected lr (step) | dev | test | test per seed |\n|---|---|---|---:|---:|---|\n";
  for (const auto* c : cells) {
    const auto& row = rep.rows[c->row];
    std::string grid;
    if (auto it = grids.find(row.method); it != grids.end()) grid = it->second;
    std::string per_seed;
    for (size_t i = 0; i < c->values.size(); ++i)
      per_seed += (i ? " " : "") + std::string("s") + std::to_string(c->seeds[i]) + " " + pct(c->values[i]);
    os << "| " << row.label << " | " << grid << " | " << chosen_lr(*c) << " (" << c->selected_step << ") | "
       << pct(c->select_mean) << " | " << pct(c->mean) << " ± " << (c->n > 1 ? pct(c->std) : std::string("–"))
       << " (n " << c->n << ") | " << per_seed << " |\n";
  }
  os << "\nThe FM alone, with no method: " << pct(unadapted_dev) << "% dev accuracy (chance 8.3%).\n";
  if (!curve.empty()) {
    os << "Dev accuracy at each learning rate (mean over seeds, best step):";
    std::string method;
    for (const auto& p : curve) {
      os << (p.method != method ? "\n  " + results::method_display_name(p.method) + ":" : ",") << " lr " << p.lr << " "
         << pct(p.dev);
      method = p.method;
    }
    os << "\n";
  }
  return os.str();
}

std::string demo_plot_script(const results::Report& rep, const std::vector<LrPoint>& curve,
                             const std::string& out_file) {
  std::vector<const results::Cell*> cells;
  for (const auto& c : rep.cells) cells.push_back(&c);
  std::stable_sort(cells.begin(), cells.end(), [](auto* a, auto* b) { return a->mean > b->mean; });
  std::map<std::string, int> rates_per_method;
  for (const auto& p : curve) ++rates_per_method[p.method];
  bool lr_panel = false, loss_panel = false;
  for (const auto& [m, n] : rates_per_method) lr_panel = lr_panel || n > 1;
  for (const auto* c : cells) loss_panel = loss_panel || !c->loss_step.empty();
  const int panels = 1 + lr_panel + loss_panel;

  std::ostringstream os;
  os.precision(10);
  os << "set terminal svg size " << 600 * panels << ",520 dynamic font \"Sans,12\" background rgb \"white\"\n"
     << "set termoption noenhanced\nset output " << quoted(out_file) << "\nset multiplot layout 1," << panels
     << " title " << quoted("lopa demo: synth-facts, each method at its dev-selected learning rate") << "\n"
     << "set grid ytics\nset key inside top right vertical\n";

  // Panel: test accuracy per method (ranked), each seed a point, the mean ± std a bar.
  for (size_t i = 0; i < cells.size(); ++i) {
    os << "$seeds" << i << " << EOD\n";
    for (double v : cells[i]->values) os << i << " " << 100 * v << "\n";
    os << "EOD\n";
  }
  os << "set title \"test accuracy at the selected lr (points: seeds; bar: mean ± std)\"\nset ylabel \"test accuracy %\"\n"
     << "set xrange [-0.6:" << (cells.size() > 0 ? cells.size() - 0.4 : 0.4) << "]\nset yrange [0:100]\nset xtics (";
  for (size_t i = 0; i < cells.size(); ++i) {
    const auto& row = rep.rows[cells[i]->row];
    os << (i ? ", " : "") << quoted(results::method_display_name(row.method) + " lr " + chosen_lr(*cells[i])) << " " << i;
  }
  os << ")\nunset key\n";
  if (cells.empty()) {
    os << "set label 1 \"no completed runs\" at graph 0.5, 0.5 center\nplot NaN notitle\nunset label 1\n";
  } else {
    os << "plot ";
    for (size_t i = 0; i < cells.size(); ++i) {
      const auto& method = rep.rows[cells[i]->row].method;
      const double sd = cells[i]->n > 1 ? 100 * cells[i]->std : 0;
      os << (i ? ", \\\n     " : "") << "'+' using (" << i << "):(" << 100 * cells[i]->mean << "):(" << 100 * cells[i]->mean - sd
         << "):(" << 100 * cells[i]->mean + sd << ") every ::0::0 with yerrorbars lc rgb " << quoted(colour(method))
         << " lw 2 pt 5 ps 1.4 notitle, $seeds" << i << " using 1:2 with points lc rgb " << quoted(colour(method))
         << " pt 6 ps 1 notitle";
    }
    os << "\n";
  }
  os << "set xtics autofreq\nunset xrange\nset key inside top right vertical\n";

  if (lr_panel) {
    std::map<std::string, std::vector<const LrPoint*>> by;
    for (const auto& p : curve) by[p.method].push_back(&p);
    size_t k = 0;
    for (const auto& [m, pts] : by) {
      os << "$lr" << k++ << " << EOD\n";
      for (const auto* p : pts) os << p->lr << " " << 100 * p->dev << "\n";
      os << "EOD\n";
    }
    os << "set title \"dev accuracy against the learning rate (mean over seeds)\"\nset logscale x\n"
       << "set xlabel \"learning rate (log scale)\"\nset ylabel \"dev accuracy %\"\nset yrange [0:100]\nset format x \"%g\"\nplot ";
    k = 0;
    for (const auto& [m, pts] : by) {
      os << (k ? ", \\\n     " : "") << "$lr" << k;
      ++k;
      os << " using 1:2 with linespoints lw 2 pt 7 lc rgb " << quoted(colour(m))
         << " title " << quoted(results::method_display_name(m));
    }
    os << "\nunset logscale x\nset format x \"%h\"\nunset xlabel\n";
  }

  if (loss_panel) {
    size_t k = 0;
    for (const auto* c : cells) {
      if (c->loss_step.empty()) continue;
      os << "$loss" << k++ << " << EOD\n";
      for (size_t i = 0; i < c->loss_step.size(); ++i)
        if (std::isfinite(c->loss_mean[i])) os << c->loss_step[i] << " " << c->loss_mean[i] << "\n";
      os << "EOD\n";
    }
    os << "set title \"training loss at the selected lr (mean over seeds)\"\nset xlabel \"step\"\n"
       << "set ylabel \"training loss\"\nset autoscale y\nplot ";
    k = 0;
    for (const auto* c : cells) {
      if (c->loss_step.empty()) continue;
      const auto& method = rep.rows[c->row].method;
      os << (k ? ", \\\n     " : "") << "$loss" << k;
      ++k;
      os << " using 1:2 with lines lw 2 lc rgb " << quoted(colour(method))
         << " title " << quoted(results::method_display_name(method) + " lr " + chosen_lr(*c));
    }
    os << "\n";
  }
  os << "unset multiplot\nset output\n";
  return os.str();
}

void render_demo_plot(const results::Report& rep, const std::vector<LrPoint>& curve, const std::string& out_file) {
  const auto script = out_file + ".gnuplot";
  write_file_atomic(script, demo_plot_script(rep, curve, out_file));
  const auto err = out_file + ".gnuplot.err";
  const int rc = std::system(("gnuplot '" + script + "' 2> '" + err + "'").c_str());
  std::ifstream in(err);
  std::string msg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(err);
  if (rc != 0) {
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 127) fail("lopa demo: ", out_file, ": gnuplot not found (install gnuplot-nox)");
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    fail("lopa demo: ", out_file, ": gnuplot failed on ", script, ": ", msg);
  }
  std::filesystem::remove(script);
}

double demo_clock_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

ElapsedPrefixBuf::ElapsedPrefixBuf(std::ostream& to, std::string stage, double start_seconds)
    : to_(to), stage_(std::move(stage)), start_(start_seconds) {}

int ElapsedPrefixBuf::overflow(int ch) {
  if (ch == traits_type::eof()) return 0;
  if (at_line_start_) {
    const long s = std::lround(demo_clock_seconds() - start_);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    to_ << "[demo " << stage_ << " | " << buf << "] ";
    at_line_start_ = false;
  }
  to_.put(static_cast<char>(ch));
  if (ch == '\n') at_line_start_ = true;
  return ch;
}

int ElapsedPrefixBuf::sync() {
  to_.flush();
  return 0;
}

}  // namespace lopa
