// render_plots: three gnuplot panels (metric vs m, metric vs trainable parameters, training loss).
#include "results/plot.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "results/report.h"
#include "runtime/base/error.h"

namespace lopa::results {

namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool parse_number(const std::string& s, double* out) {
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return !s.empty() && *end == 0;
}

struct Series {
  std::string title;
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending
  std::string color;                              // "" = gnuplot's cycle
  int dash = 1, point = 7;
};

// One colour per method, the same in every panel; LoPA in red so it stands out.
std::string method_color(const std::string& method) {
  static const std::map<std::string, std::string> colors = {
      {"lopa", "#d62728"}, {"pt", "#1f77b4"},   {"idpg", "#2ca02c"},
      {"lora", "#9467bd"}, {"fft", "#7f7f7f"}, {"prefix", "#ff7f0e"}};
  auto it = colors.find(method);
  return it == colors.end() ? "" : it->second;
}

int method_point(const std::string& method) {
  static const std::map<std::string, int> points = {{"lopa", 7}, {"pt", 5}, {"idpg", 9}, {"lora", 11}, {"fft", 13}, {"prefix", 3}};
  auto it = points.find(method);
  return it == points.end() ? 6 : it->second;
}

// The value as the table shows it: percentages for fraction metrics.
double shown(double v, const std::string& metric) {
  const bool fraction = metric == "accuracy" || metric == "f1" || metric.rfind("pass_at_", 0) == 0 || metric == "exact_match";
  return fraction ? 100 * v : v;
}

// Emits one panel: datablocks, then a plot command (or an empty frame saying there is no data).
void emit_panel(std::ostringstream& os, int panel, const std::string& title, const std::string& xlabel,
                const std::string& ylabel, bool logx, const std::vector<Series>& series, const std::string& style,
                const std::string& key) {
  os << "set title " << quoted(title) << "\nset xlabel " << quoted(xlabel) << "\nset ylabel " << quoted(ylabel) << "\n";
  os << (logx ? "set logscale x 10\n" : "unset logscale x\n");
  os << "set key " << key << " box opaque samplen 2 spacing 1.1 font \",10\"\nset grid\nset autoscale\nunset label\n";
  bool any = false;
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].points.empty()) continue;
    os << "$p" << panel << "s" << i << " << EOD\n";
    for (const auto& [x, y] : series[i].points) os << x << " " << y << "\n";
    os << "EOD\n";
    any = true;
  }
  if (!any) {
    os << "unset logscale x\nset xrange [0:1]\nset yrange [0:1]\nset label 1 \"no data\" at graph 0.5,0.5 center\n"
          "plot 1/0 notitle\n";
    return;
  }
  os << "plot ";
  bool first = true;
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].points.empty()) continue;
    const Series& se = series[i];
    os << (first ? "" : ", \\\n     ") << "$p" << panel << "s" << i << " using 1:2 with " << style << " lw 2 dt " << se.dash
       << " pt " << se.point << (se.color.empty() ? "" : " lc rgb " + quoted(se.color)) << " title " << quoted(se.title);
    first = false;
  }
  os << "\n";
}

}  // namespace

std::string plot_script(const Report& rep, const std::string& out_file) {
  std::ostringstream os;
  os.precision(10);
  if (ends_with(out_file, ".png"))
    os << "set terminal pngcairo size 1800,640 font \"Sans,11\" background rgb \"white\"\n";
  else
    os << "set terminal svg size 1800,640 dynamic font \"Sans,12\" background rgb \"white\"\n";
  os << "set termoption noenhanced\nset output " << quoted(out_file) << "\n";
  os << "set multiplot layout 1,3 title " << quoted("lopa report: " + rep.root) << "\n";

  std::set<std::string> metrics;
  for (const auto& c : rep.cols) metrics.insert(c.metric);
  std::string metric_name;
  for (const auto& m : metrics) metric_name += (metric_name.empty() ? "" : "/") + m;
  const bool percent = !rep.cols.empty() && shown(1, rep.cols[0].metric) == 100;
  const std::string ylabel = metric_name + (percent ? " %" : "") + " (mean over " + std::to_string(rep.cols.size()) +
                             " task/model cells)";

  // Panel 1: metric vs m, one series per (method, r): y = mean over the columns of the cell means.
  {
    std::map<std::string, std::map<double, std::vector<double>>> acc;  // series title -> m -> values
    std::map<std::string, std::string> method_of;
    for (const auto& c : rep.cells) {
      const Row& row = rep.rows[c.row];
      double m = 0;
      if (!parse_number(row.m, &m)) continue;
      const std::string title = method_display_name(row.method) + (row.r.empty() ? "" : " (r=" + row.r + ")");
      acc[title][m].push_back(shown(c.mean, rep.cols[c.col].metric));
      method_of[title] = row.method;
    }
    std::vector<Series> series;
    std::map<std::string, int> per_method;
    for (const auto& [title, by_m] : acc) {
      const std::string& method = method_of[title];
      Series s{title, {}, method_color(method), 1 + per_method[method]++ % 5, method_point(method)};
      for (const auto& [m, vals] : by_m) {
        double sum = 0;
        for (double v : vals) sum += v;
        s.points.push_back({m, sum / vals.size()});
      }
      series.push_back(s);
    }
    emit_panel(os, 0, "metric vs prompt length m", "prompt length m (virtual tokens)", ylabel, false, series,
               "linespoints ps 0.9", "inside bottom right vertical");
  }
  // Panel 2: metric vs trainable parameters, one point per (row, model), one series per method.
  {
    std::map<std::string, std::map<std::pair<int, std::string>, std::vector<double>>> acc;
    for (const auto& c : rep.cells)
      acc[rep.rows[c.row].method][{c.row, rep.cols[c.col].model}].push_back(shown(c.mean, rep.cols[c.col].metric));
    std::vector<Series> series;
    for (const auto& [method, pts] : acc) {
      Series s{method_display_name(method), {}, method_color(method), 1, method_point(method)};
      for (const auto& [key, vals] : pts) {
        auto it = rep.rows[key.first].trainable_params.find(key.second);
        if (it == rep.rows[key.first].trainable_params.end() || it->second <= 0) continue;
        double sum = 0;
        for (double v : vals) sum += v;
        s.points.push_back({static_cast<double>(it->second), sum / vals.size()});
      }
      std::sort(s.points.begin(), s.points.end());
      series.push_back(s);
    }
    emit_panel(os, 1, "metric vs trainable parameters", "trainable parameters (log scale)", ylabel, true, series,
               "points ps 1.2", "inside top left vertical");
  }
  // Panel 3: training loss of every row in the column with the most loss curves.
  {
    std::map<int, int> curves_per_col;
    for (const auto& c : rep.cells)
      if (!c.loss_step.empty()) ++curves_per_col[c.col];
    int col = -1, most = 0;
    for (const auto& [c, n] : curves_per_col)
      if (n > most) most = n, col = c;
    std::vector<Series> series;
    std::string where = "no runs with training loss";
    if (col >= 0) {
      where = rep.cols[col].model + "/" + rep.cols[col].task;
      std::map<std::string, int> per_method;
      for (const auto& c : rep.cells) {
        if (c.col != col || c.loss_step.empty()) continue;
        const std::string& method = rep.rows[c.row].method;
        Series s{rep.rows[c.row].label, {}, method_color(method), 1 + per_method[method]++ % 5, 7};
        // At most ~400 points per curve keeps the SVG small; every point is kept below that.
        const size_t stride = std::max<size_t>(1, c.loss_step.size() / 400);
        for (size_t i = 0; i < c.loss_step.size(); i += stride)
          if (std::isfinite(c.loss_mean[i])) s.points.push_back({static_cast<double>(c.loss_step[i]), c.loss_mean[i]});
        series.push_back(s);
      }
    }
    const int rows_in_key = static_cast<int>((series.size() + 1) / 2);
    emit_panel(os, 2, "training loss, " + where + " (mean over seeds)", "step", "training loss", false, series,
               "lines", "inside top right vertical maxrows " + std::to_string(std::max(1, rows_in_key)));
  }
  os << "unset multiplot\nset output\n";
  return os.str();
}

void render_plots(const Report& rep, const std::string& out_file) {
  LOPA_CHECK(ends_with(out_file, ".svg") || ends_with(out_file, ".png"), "--plot ", out_file,
             ": the file name must end in .svg or .png");
  char script_path[] = "/tmp/lopa-plot-XXXXXX";
  const int fd = ::mkstemp(script_path);
  LOPA_CHECK(fd >= 0, "--plot: cannot create a temporary gnuplot script");
  ::close(fd);
  {
    std::ofstream script(script_path);
    script << plot_script(rep, out_file);
  }
  const std::string err_path = std::string(script_path) + ".err";
  const std::string cmd = "gnuplot " + quoted(script_path) + " 2> " + quoted(err_path);
  const int rc = std::system(cmd.c_str());
  std::ifstream err_in(err_path);
  std::string err((std::istreambuf_iterator<char>(err_in)), std::istreambuf_iterator<char>());
  ::unlink(script_path);
  ::unlink(err_path.c_str());
  if (rc != 0) {
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 127) fail("--plot ", out_file, ": gnuplot not found (install gnuplot-nox)");
    for (auto& ch : err)
      if (ch == '\n') ch = ' ';
    fail("--plot ", out_file, ": gnuplot failed: ", err);
  }
  std::ifstream check(out_file, std::ios::binary | std::ios::ate);
  LOPA_CHECK(check && check.tellg() > 0, "--plot ", out_file, ": gnuplot wrote no output");
}

}  // namespace lopa::results
