// render_plots through gnuplot: SVG and PNG files from a directory of runs, checked for a valid header,
// the three panels' titles, the series' labels and the axis labels.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "results/plot.h"
#include "results/report.h"
#include "results/run_log.h"
#include "runtime/base/error.h"

namespace fs = std::filesystem;
using namespace lopa::results;

namespace {

void write_run(const fs::path& dir, const std::string& method, int m, int r, int seed, double acc, int64_t params) {
  nlohmann::json cfg = {{"method", method}, {"task", "sst2"}, {"seed", seed}};
  if (m) cfg["num-virtual-tokens"] = m;
  if (r) cfg["rank"] = r;
  fs::create_directories(dir);
  RunInfo info;
  info.method = method;
  info.task = "sst2";
  info.model = "tiny";
  info.seed = seed;
  info.config_json = cfg.dump();
  info.trainable_params = params;
  auto log = RunLog::create((dir / "metrics.h5").string(), info);
  for (int i = 1; i <= 200; ++i) log.log_train(i, 3.0 / (1 + 0.02 * i * (1 + m / 20.0)) + 0.01 * seed, 1e-3, 1, 100, i);
  log.log_eval(200, {{"accuracy", acc}});
  log.set_status_completed();
}

fs::path make_runs() {
  const fs::path root = fs::temp_directory_path() / ("lopa-plot-" + std::to_string(::getpid()));
  fs::remove_all(root);
  for (int seed = 0; seed < 2; ++seed) {
    for (int m : {5, 10, 20}) {
      write_run(root / ("lopa-m" + std::to_string(m) + "-s" + std::to_string(seed)), "lopa", m, 4, seed, 0.7 + m / 100.0 + seed * 0.01, 1000 * m);
      write_run(root / ("pt-m" + std::to_string(m) + "-s" + std::to_string(seed)), "pt", m, 0, seed, 0.6 + m / 200.0 + seed * 0.01, 64 * m);
    }
    write_run(root / ("lora-s" + std::to_string(seed)), "lora", 0, 4, seed, 0.85 + seed * 0.01, 50000);
  }
  return root;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(Plot, SvgHasPanelsSeriesAndAxes) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) GTEST_SKIP() << "gnuplot not installed (scripts/setup.sh installs gnuplot-nox)";
  const fs::path root = make_runs();
  ReportOptions opts;
  opts.with_train = true;
  const Report rep = build_report(root.string(), opts);
  ASSERT_EQ(rep.rows.size(), 7u);
  const fs::path svg = root / "fig.svg";
  render_plots(rep, svg.string());
  const std::string s = slurp(svg);
  ASSERT_GT(s.size(), 1000u);
  EXPECT_NE(s.find("<svg"), std::string::npos);
  EXPECT_NE(s.find("</svg>"), std::string::npos);
  for (const char* text : {"metric vs prompt length m", "metric vs trainable parameters", "training loss, tiny/sst2",
                           "prompt length m (virtual tokens)", "trainable parameters (log scale)", "step",
                           "LoPA (r=4)", "PT", "LoRA", "LoPA (m=5, r=4)", "PT (m=20)"})
    EXPECT_NE(s.find(text), std::string::npos) << "missing '" << text << "' in the SVG";
  fs::remove_all(root);
}

TEST(Plot, PngByFileName) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) GTEST_SKIP() << "gnuplot not installed";
  const fs::path root = make_runs();
  ReportOptions opts;
  opts.with_train = true;
  const Report rep = build_report(root.string(), opts);
  // The script names every series (PNG pixels cannot be searched for labels).
  const std::string script = plot_script(rep, "x.png");
  EXPECT_NE(script.find("set terminal pngcairo"), std::string::npos);
  EXPECT_NE(script.find("title \"LoPA (r=4)\""), std::string::npos) << script;
  EXPECT_NE(script.find("set logscale x 10"), std::string::npos);
  const fs::path png = root / "fig.png";
  render_plots(rep, png.string());
  const std::string s = slurp(png);
  ASSERT_GT(s.size(), 8000u);
  EXPECT_EQ(s.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_THROW(render_plots(rep, (root / "fig.pdf").string()), lopa::Error);
  fs::remove_all(root);
}
