// What `lopa demo` writes before and after its sweep (experiments/demo/demo.h): the synth-facts JSONL
// files; one sweep spec per method, each over its own learning-rate grid, read back through the sweep
// planner (cells and keys derived by hand from the demo's documented defaults: 4 seeds, m 4, r 2, the
// README's grids); the per-rate dev curve, the summary and the figure's panels from run logs written
// here with hand-chosen values, so the selected rate and the means are known without the code.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "experiments/demo/demo.h"
#include "experiments/tasks/synthetic_task.h"
#include "results/report.h"
#include "results/run_log.h"
#include "runtime/base/error.h"

namespace fs = std::filesystem;

namespace lopa {
namespace {

using Keys = std::map<std::string, std::string>;

class DemoFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = (fs::temp_directory_path() / ("lopa_demo_specs_" + std::to_string(getpid()))).string();
    fs::remove_all(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string dir;
};

const cluster::Cell* find_cell(const cluster::Plan& p, const std::string& lr, const std::string& seed) {
  for (const auto& c : p.cells)
    if (c.keys.at("lr") == lr && c.keys.at("seed") == seed) return &c;
  return nullptr;
}

std::set<std::string> values_of(const cluster::Plan& p, const std::string& key) {
  std::set<std::string> v;
  for (const auto& c : p.cells) v.insert(c.keys.count(key) ? c.keys.at(key) : "<absent>");
  return v;
}

std::string expect_error(const DemoSweepOptions& o) {
  try {
    write_demo_specs(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST_F(DemoFiles, DefaultSpecsGiveEachMethodItsOwnLearningRateGrid) {
  DemoSweepOptions o;
  o.out = dir + "/demo";
  o.fm = "/fm/demo";
  const auto specs = write_demo_specs(o);
  const std::vector<std::string> methods = {"pt", "idpg", "lopa", "lora"};
  // The grids the README documents: 3 rates per method, spaced x3, placed per method.
  const std::map<std::string, std::set<std::string>> grids = {{"pt", {"0.1", "0.03", "0.01"}},
                                                              {"idpg", {"0.003", "0.001", "0.0003"}},
                                                              {"lopa", {"0.01", "0.003", "0.001"}},
                                                              {"lora", {"0.01", "0.003", "0.001"}}};
  ASSERT_EQ(specs.size(), 4u);
  for (size_t i = 0; i < methods.size(); ++i) {
    const auto& m = methods[i];
    EXPECT_EQ(specs[i], dir + "/demo/sweep-" + m + ".ini");
    const auto plan = cluster::make_plan(cluster::read_sweep_spec(specs[i]));
    EXPECT_EQ(plan.spec.name, "demo-" + m);
    EXPECT_EQ(plan.spec.root, dir + "/demo/runs/" + m);
    EXPECT_EQ(plan.spec.launch.executor, "local");
    EXPECT_EQ(plan.spec.launch.report_command, "");
    EXPECT_EQ(plan.spec.launch.cell_command.find("eval --run"), std::string::npos) << plan.spec.launch.cell_command;
    ASSERT_EQ(plan.cells.size(), 12u) << m;  // 3 rates x 4 seeds
    EXPECT_EQ(values_of(plan, "method"), std::set<std::string>{m});
    EXPECT_EQ(values_of(plan, "lr"), grids.at(m)) << m;
    EXPECT_EQ(values_of(plan, "seed"), (std::set<std::string>{"0", "1", "2", "3"}));
    for (const auto& lr : grids.at(m))
      for (const char* seed : {"0", "1", "2", "3"}) EXPECT_NE(find_cell(plan, lr, seed), nullptr) << m << lr << seed;
  }
  // Every key of one cell, by hand: 600 steps, evaluation every 150 on dev (selects) then test, warmup 60.
  const Keys common = {{"model", "/fm/demo"}, {"task", "synth-facts"}, {"max-steps", "600"}, {"eval-every", "150"},
                       {"eval-split", "dev,test"}, {"batch-size", "16"}, {"max-length", "32"},
                       {"eval-batch-size", "72"}, {"schedule", "linear"}, {"warmup-steps", "60"},
                       {"device", "cpu"}, {"tp", "1"}};
  Keys lopa = common;
  lopa.insert({{"method", "lopa"}, {"seed", "1"}, {"lr", "0.003"}, {"rank", "2"}, {"num-virtual-tokens", "4"},
               {"prompt-init", "vocab"}});
  const auto lopa_plan = cluster::make_plan(cluster::read_sweep_spec(specs[2]));
  ASSERT_NE(find_cell(lopa_plan, "0.003", "1"), nullptr);
  EXPECT_EQ(find_cell(lopa_plan, "0.003", "1")->keys, lopa);
  // Only the keys each method reads: PT no rank; IDPG neither rank nor Z_S's initialisation; LoRA no m.
  const auto keys_of = [&](size_t i) { return cluster::make_plan(cluster::read_sweep_spec(specs[i])).cells.at(0).keys; };
  EXPECT_EQ(keys_of(0).count("rank"), 0u);
  EXPECT_EQ(keys_of(0).at("prompt-init"), "vocab");
  EXPECT_EQ(keys_of(1).count("rank") + keys_of(1).count("prompt-init"), 0u);
  EXPECT_EQ(keys_of(1).at("num-virtual-tokens"), "4");
  EXPECT_EQ(keys_of(3).count("num-virtual-tokens") + keys_of(3).count("prompt-init"), 0u);
  EXPECT_EQ(keys_of(3).at("rank"), "2");
}

TEST_F(DemoFiles, MethodSubsetsWriteOnlyTheKeysTheirMethodsUse) {
  DemoSweepOptions o;
  o.out = dir;
  o.fm = "/fm";
  // The command of issue 17 that failed planning with "[fixed] rank is not used by any method".
  o.methods = "pt,idpg";
  auto specs = write_demo_specs(o);
  ASSERT_EQ(specs.size(), 2u);
  for (const auto& s : specs) {
    const auto plan = cluster::make_plan(cluster::read_sweep_spec(s));  // throws on a key no cell reads
    EXPECT_EQ(values_of(plan, "rank"), std::set<std::string>{"<absent>"}) << s;
  }
  EXPECT_FALSE(fs::exists(dir + "/sweep-lopa.ini"));
  EXPECT_FALSE(fs::exists(dir + "/sweep-lora.ini"));

  // A short single-cell run: steps / 4 and steps / 10 round to 0, both become 1; a grid of one rate.
  o.methods = " lora ,";
  o.seeds = "3";
  o.steps = 3;
  o.ranks = 2;
  o.tp = 2;
  parse_lr_grid_option("lora = 0.05", o.lr_grids);
  specs = write_demo_specs(o);
  ASSERT_EQ(specs.size(), 1u);
  const auto plan = cluster::make_plan(cluster::read_sweep_spec(specs[0]));
  ASSERT_EQ(plan.cells.size(), 1u);
  EXPECT_EQ(plan.spec.launch.ranks_per_cell, 2);
  const Keys want = {{"model", "/fm"}, {"task", "synth-facts"}, {"method", "lora"}, {"lr", "0.05"}, {"seed", "3"},
                     {"max-steps", "3"}, {"eval-every", "1"}, {"eval-split", "dev,test"}, {"batch-size", "16"},
                     {"rank", "2"}, {"max-length", "32"}, {"eval-batch-size", "72"}, {"schedule", "linear"},
                     {"warmup-steps", "1"}, {"device", "cpu"}, {"tp", "2"}};
  EXPECT_EQ(plan.cells[0].keys, want);
}

TEST_F(DemoFiles, LearningRateGridOptionsAndErrors) {
  std::map<std::string, std::string> g;
  parse_lr_grid_option("lopa=0.01, 0.003,,0.001", g);
  parse_lr_grid_option(" pt =0.5", g);
  parse_lr_grid_option("pt=0.2,0.1", g);  // a later value replaces the earlier one
  EXPECT_EQ(g, (std::map<std::string, std::string>{{"lopa", "0.01, 0.003, 0.001"}, {"pt", "0.2, 0.1"}}));
  for (const auto& [bad, msg] : std::map<std::string, std::string>{
           {"0.01", "lopa demo: --lr '0.01': expected METHOD=LR[,LR...], e.g. lopa=0.01,0.003"},
           {"=0.01", "lopa demo: --lr '=0.01': expected METHOD=LR[,LR...], e.g. lopa=0.01,0.003"},
           {"lopa= , ", "lopa demo: --lr 'lopa= , ': no learning rate after '='"}}) {
    try {
      parse_lr_grid_option(bad, g);
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), msg);
    }
  }
  DemoSweepOptions o;
  o.out = dir;
  o.fm = "/fm";
  o.methods = "pt, fft";  // FFT has no default grid
  EXPECT_EQ(expect_error(o), "lopa demo: no learning-rate grid for method 'fft' (give --lr fft=LR[,LR...])");
  o.lr_grids["fft"] = "1e-4";
  EXPECT_EQ(write_demo_specs(o).size(), 2u);
  o.methods = "pt, lopa, pt";
  EXPECT_EQ(expect_error(o), "lopa demo: --methods names 'pt' twice");
  o.methods = " , ";
  EXPECT_EQ(expect_error(o), "lopa demo: --methods is empty");
  // A rate the planner refuses is refused when the spec is read, naming it.
  o.methods = "lopa";
  o.lr_grids["lopa"] = "0.01, fast";
  EXPECT_THROW(cluster::read_sweep_spec(write_demo_specs(o).at(0)), Error);
}

// A completed synth-facts run log with dev and test accuracy at steps 10 and 20.
void write_run(const std::string& path, const std::string& method, const std::string& lr, int64_t seed,
               std::pair<double, double> dev, std::pair<double, double> test) {
  fs::create_directories(fs::path(path).parent_path());
  results::RunInfo info;
  info.method = method;
  info.task = "synth-facts";
  info.model = "/fm/demo";
  info.device = "cpu";
  info.seed = seed;
  info.trainable_params = 100;
  nlohmann::json cfg = {{"method", method}, {"task", "synth-facts"}, {"model", "/fm/demo"}, {"lr", lr},
                        {"seed", std::to_string(seed)}, {"eval-split", "dev,test"}};
  if (method != "pt") cfg["rank"] = "2";
  info.config_json = cfg.dump();
  auto log = results::RunLog::create(path, info);
  for (int64_t s = 1; s <= 20; ++s) log.log_train(s, 3.0 - 0.1 * s, 0.01, 1, 1, s);
  log.log_eval("dev", 10, {{"accuracy", dev.first}});
  log.log_eval("test", 10, {{"accuracy", test.first}});
  log.log_eval("dev", 20, {{"accuracy", dev.second}});
  log.log_eval("test", 20, {{"accuracy", test.second}});
  log.set_status_completed();
}

TEST_F(DemoFiles, CurveSummaryAndFigureFromRunLogs) {
  const auto runs = dir + "/runs";
  // PT: lr 0.1 is best on dev at step 20 (mean 0.55 over seeds; test there 0.40, 0.50);
  // lr 0.03 best at step 10 (dev mean 0.45). LoPA: one rate, dev 0.30 at step 20 (test 0.70, 0.60).
  write_run(runs + "/pt/a/metrics.h5", "pt", "0.1", 0, {0.2, 0.5}, {0.9, 0.4});
  write_run(runs + "/pt/b/metrics.h5", "pt", "0.1", 1, {0.3, 0.6}, {0.9, 0.5});
  write_run(runs + "/pt/c/metrics.h5", "pt", "0.03", 0, {0.5, 0.4}, {0.1, 0.1});
  write_run(runs + "/pt/d/metrics.h5", "pt", "0.03", 1, {0.4, 0.4}, {0.1, 0.1});
  write_run(runs + "/lopa/a/metrics.h5", "lopa", "0.003", 0, {0.1, 0.3}, {0.2, 0.7});
  write_run(runs + "/lopa/b/metrics.h5", "lopa", "0.003", 1, {0.2, 0.3}, {0.2, 0.6});

  auto curve = demo_lr_curve(runs);
  ASSERT_EQ(curve.size(), 3u);
  std::map<std::pair<std::string, double>, double> got;
  for (const auto& p : curve) {
    EXPECT_EQ(p.seeds, 2);
    got[{p.method, p.lr}] = p.dev;
  }
  EXPECT_NEAR((got[{"pt", 0.1}]), 0.55, 1e-12);
  EXPECT_NEAR((got[{"pt", 0.03}]), 0.45, 1e-12);
  EXPECT_NEAR((got[{"lopa", 0.003}]), 0.30, 1e-12);

  results::ReportOptions ro;
  ro.with_train = true;
  ro.select_by = "dev";
  ro.report_split = "test";
  const auto rep = results::build_report(runs, ro);
  const auto text = demo_summary(rep, curve, {{"pt", "0.1, 0.03"}, {"lopa", "0.003"}}, 0.0417);
  // Ranked by test mean: LoPA 65.0 ± 7.1 first, then PT at lr 0.1 (step 20): 45.0 ± 7.1.
  const auto lopa_at = text.find("| LoPA"), pt_at = text.find("| PT");
  ASSERT_NE(lopa_at, std::string::npos) << text;
  ASSERT_NE(pt_at, std::string::npos) << text;
  EXPECT_LT(lopa_at, pt_at) << text;
  EXPECT_NE(text.find("| 0.1, 0.03 | 0.1 (20) | 55.0 | 45.0 ± 7.1 (n 2) | s0 40.0 s1 50.0 |"), std::string::npos) << text;
  EXPECT_NE(text.find("| 0.003 | 0.003 (20) | 30.0 | 65.0 ± 7.1 (n 2) | s0 70.0 s1 60.0 |"), std::string::npos) << text;
  EXPECT_NE(text.find("The FM alone, with no method: 4.2% dev accuracy"), std::string::npos) << text;
  EXPECT_NE(text.find("PT: lr 0.03 45.0, lr 0.1 55.0"), std::string::npos) << text;

  // The figure: PT has two rates, so the learning-rate panel is there; the loss panel too (3 panels).
  auto script = demo_plot_script(rep, curve, dir + "/demo.svg");
  EXPECT_NE(script.find("set multiplot layout 1,3"), std::string::npos) << script;
  EXPECT_NE(script.find("dev accuracy against the learning rate"), std::string::npos);
  EXPECT_NE(script.find("training loss at the selected lr"), std::string::npos);
  EXPECT_EQ(script.find("prompt length m"), std::string::npos);  // a single m: no panel against m
  // One rate per method: no learning-rate panel; a report without training series: no loss panel.
  curve.erase(std::remove_if(curve.begin(), curve.end(), [](const LrPoint& p) { return p.lr == 0.03; }), curve.end());
  ro.with_train = false;
  script = demo_plot_script(results::build_report(runs, ro), curve, dir + "/demo.svg");
  EXPECT_NE(script.find("set multiplot layout 1,1"), std::string::npos) << script;
  EXPECT_EQ(script.find("against the learning rate"), std::string::npos);
  EXPECT_EQ(script.find("training loss"), std::string::npos);
  // gnuplot draws it (skipped where gnuplot is absent).
  if (std::system("command -v gnuplot > /dev/null 2>&1") == 0) {
    render_demo_plot(rep, demo_lr_curve(runs), dir + "/demo.svg");
    std::ifstream in(dir + "/demo.svg");
    std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(svg.find("<svg"), std::string::npos);
    EXPECT_NE(svg.find("dev accuracy against the learning rate"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir + "/demo.svg.gnuplot"));
  }
}

TEST_F(DemoFiles, SynthFactsDataHasOneLinePerInstance) {
  write_synth_facts_data(dir + "/data");
  // Splits over disjoint people: 48 x 3 relations train, 24 x 3 dev and test (synthetic_task.h).
  for (const auto& [split, n] : std::map<std::string, size_t>{{"train", 144}, {"dev", 72}, {"test", 72}}) {
    std::ifstream in(dir + "/data/" + split + ".jsonl");
    ASSERT_TRUE(in) << split;
    const auto ds = load_synth_facts(split);
    size_t i = 0;
    for (std::string line; std::getline(in, line); ++i) {
      ASSERT_LT(i, ds.examples.size()) << split;
      const auto j = nlohmann::json::parse(line);
      const auto& ex = ds.examples[i];
      EXPECT_EQ(j.at("id"), ex.id);
      EXPECT_EQ(j.at("prompt"), ex.fields.at("person") + " " + ex.fields.at("relation"));
      EXPECT_EQ(j.at("answer"), ex.label);
      EXPECT_EQ(j.size(), 5u);
    }
    EXPECT_EQ(i, n) << split;
  }
}

}  // namespace
}  // namespace lopa
