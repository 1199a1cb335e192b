// Selection on one split, reporting on another (lopa report --select-by dev --report test) against
// hand-derived values: each cell's learning rate and evaluation step are chosen by the mean dev
// accuracy over seeds, the test accuracy there is shown; the paired per-seed comparison (wins, paired
// t against Student's table); runs without the needed split are listed, not dropped; per-split run logs
// (schema 2) and schema-1 logs written by h5py (an independent writer) read back.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "results/report.h"
#include "results/run_log.h"
#include "results/run_log_reader.h"
#include "runtime/base/error.h"

namespace fs = std::filesystem;
using namespace lopa::results;

namespace {

struct Evals {
  double dev10[3], dev20[3], test10[3], test20[3];  // per seed 0, 1, 2
};

// One configuration (method, lr) over seeds 0..2, evaluated on dev and test at steps 10 and 20.
void write_config(const fs::path& root, const std::string& method, const std::string& lr, const Evals& e,
                  bool with_test = true) {
  for (int seed = 0; seed < 3; ++seed) {
    nlohmann::json cfg = {{"method", method}, {"task", "synth-facts"}, {"model", "m/tiny"}, {"seed", std::to_string(seed)},
                          {"lr", lr},         {"num-virtual-tokens", "4"}, {"rank", method == "lopa" ? "2" : "1"}};
    const fs::path dir = root / (method + "-lr" + lr + "-s" + std::to_string(seed));
    fs::create_directories(dir);
    RunInfo info;
    info.method = method;
    info.task = "synth-facts";
    info.model = "m/tiny";
    info.seed = seed;
    info.config_json = cfg.dump();
    info.eval_split = "dev";
    auto log = RunLog::create((dir / "metrics.h5").string(), info);
    log.log_train(10, 1.0, 1e-3, 1, 1, 1);
    log.log_eval(10, {{"accuracy", e.dev10[seed]}});  // the run's own split: dev
    if (with_test) log.log_eval("test", 10, {{"accuracy", e.test10[seed]}});
    log.log_eval("dev", 20, {{"accuracy", e.dev20[seed]}});
    if (with_test) log.log_eval("test", 20, {{"accuracy", e.test20[seed]}});
    log.set_status_completed();
  }
}

fs::path make_root(const std::string& name) {
  const fs::path root = fs::temp_directory_path() / ("lopa-select-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  // LoPA lr 0.01: best dev mean at step 20 (0.62); lr 0.001: best at step 10 (0.70) -> chosen.
  write_config(root, "lopa", "0.01", {{.50, .52, .54}, {.60, .62, .64}, {.40, .41, .42}, {.70, .72, .71}});
  write_config(root, "lopa", "0.001", {{.70, .70, .70}, {.65, .66, .64}, {.55, .60, .65}, {.90, .90, .90}});
  // IDPG lr 0.01: best at step 20 (0.61) -> chosen; lr 0.001 has the best test values but a poor dev.
  write_config(root, "idpg", "0.01", {{.60, .60, .60}, {.61, .61, .61}, {.50, .50, .50}, {.50, .58, .66}});
  write_config(root, "idpg", "0.001", {{.30, .30, .30}, {.30, .30, .30}, {.95, .95, .95}, {.95, .95, .95}});
  return root;
}

const Cell& cell_of(const Report& rep, const std::string& method) {
  for (const auto& c : rep.cells)
    if (rep.rows[c.row].method == method) return c;
  throw std::runtime_error("no cell for " + method);
}

}  // namespace

TEST(ReportSelect, ChoosesConfigAndStepOnDevAndShowsTest) {
  const auto root = make_root("main");
  ReportOptions o;
  o.select_by = "dev";
  o.report_split = "test";
  const Report rep = build_report(root.string(), o);
  EXPECT_EQ(rep.runs_used, 12);
  EXPECT_TRUE(rep.excluded.empty());
  ASSERT_EQ(rep.cells.size(), 2u);

  const Cell& lopa = cell_of(rep, "lopa");
  EXPECT_EQ(lopa.selected_step, 10);
  EXPECT_NEAR(lopa.select_mean, 0.70, 1e-12);
  EXPECT_NEAR(lopa.mean, 0.60, 1e-12);  // test at (lr 0.001, step 10): .55 .60 .65
  EXPECT_NEAR(lopa.std, 0.05, 1e-12);
  EXPECT_EQ(lopa.n, 3);
  EXPECT_EQ(lopa.num_configs, 2);
  EXPECT_EQ(lopa.chosen_config, "lr=0.001");

  const Cell& idpg = cell_of(rep, "idpg");
  EXPECT_EQ(idpg.selected_step, 20);
  EXPECT_NEAR(idpg.select_mean, 0.61, 1e-12);
  EXPECT_NEAR(idpg.mean, 0.58, 1e-12);  // .50 .58 .66
  EXPECT_NEAR(idpg.std, 0.08, 1e-12);
  EXPECT_EQ(idpg.chosen_config, "lr=0.01");

  // Paired over seeds: differences .05, .02, -.01 -> mean .02, sd .03, t = .02 / (.03 / sqrt 3) = 1.1547.
  ASSERT_EQ(rep.paired.size(), 1u);
  const auto& p = rep.paired[0];
  EXPECT_EQ(p.a, "lopa");
  EXPECT_EQ(p.b, "idpg");
  EXPECT_EQ(p.pairs, 3);
  EXPECT_EQ(p.wins, 2);
  EXPECT_EQ(p.losses, 1);
  EXPECT_NEAR(p.mean_diff, 0.02, 1e-12);
  EXPECT_NEAR(p.sd_diff, 0.03, 1e-12);
  EXPECT_NEAR(p.t, 0.02 / (0.03 / std::sqrt(3.0)), 1e-9);
  EXPECT_FALSE(p.exceeds_noise);  // t(0.975, 2) = 4.303

  const auto md = format_report(rep, "md");
  EXPECT_NE(md.find("**60.00 ± 5.00** (3; lr=0.001, step 10)"), std::string::npos) << md;
  EXPECT_NE(md.find("58.00 ± 8.00 (3; lr=0.01, step 20)"), std::string::npos) << md;
  EXPECT_NE(md.find("on test, at the configuration and evaluation step with the best mean dev"), std::string::npos) << md;
  EXPECT_NE(md.find("LoPA vs IDPG over 3 paired seeds: LoPA better in 2, worse in 1, tied in 0; mean difference "
                    "+2.00 points (sd 3 points, t = 1.15, df 2): within the seed noise"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("LoPA (m=4, r=2) on synth-facts: lr=0.001, step 10, 3 seeds, dev 70.00 (2 configurations compared)"),
            std::string::npos)
      << md;
  const auto csv = format_report(rep, "csv");
  EXPECT_NE(csv.find("synth-facts accuracy selected,synth-facts accuracy step"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",0.6,0.05,3,lr=0.001,10"), std::string::npos) << csv;
  fs::remove_all(root);
}

TEST(ReportSelect, BestOfTheReportedSplitIsLabelledOptimistic) {
  const auto root = make_root("optimistic");
  ReportOptions o;
  o.select_by = "test";
  o.report_split = "test";
  const Report rep = build_report(root.string(), o);
  EXPECT_NEAR(cell_of(rep, "lopa").mean, 0.90, 1e-12);  // lr 0.001 at step 20
  EXPECT_NEAR(cell_of(rep, "idpg").mean, 0.95, 1e-12);
  EXPECT_NE(format_report(rep, "md").find("(selected on the split shown: optimistic)"), std::string::npos);
  // The run-level best of the legacy mode is labelled too.
  ReportOptions legacy;
  EXPECT_NE(format_report(build_report(root.string(), legacy), "md").find("chosen on the split shown: optimistic"),
            std::string::npos);
  fs::remove_all(root);
}

TEST(ReportSelect, RunsWithoutTheReportedSplitAreListed) {
  const auto root = make_root("missing");
  write_config(root, "pt", "0.01", {{.5, .5, .5}, {.5, .5, .5}, {0, 0, 0}, {0, 0, 0}}, /*with_test=*/false);
  ReportOptions o;
  o.select_by = "dev";
  o.report_split = "test";
  const Report rep = build_report(root.string(), o);
  EXPECT_EQ(rep.runs_used, 12);
  ASSERT_EQ(rep.excluded.size(), 3u);
  EXPECT_NE(rep.excluded[0].reason.find("no evaluation of metric 'accuracy' on split 'test'"), std::string::npos);
  fs::remove_all(root);
}

TEST(ReportSelect, OptionsGoTogether) {
  const auto root = make_root("options");
  ReportOptions o;
  o.select_by = "dev";
  EXPECT_THROW(build_report(root.string(), o), lopa::Error);
  fs::remove_all(root);
}

// One run of `method` at `seed` under `root`, with extra config keys (device, autocast), evaluated on
// holdout and dev at step 10.
void write_run(const fs::path& root, const std::string& method, int seed, const nlohmann::json& extra,
               double holdout, double dev) {
  nlohmann::json cfg = {{"method", method}, {"task", "rte"}, {"model", "m/tiny"}, {"seed", std::to_string(seed)},
                        {"lr", "0.001"},    {"num-virtual-tokens", "4"}, {"rank", "1"}};
  cfg.update(extra);
  const fs::path dir = root / (method + "-s" + std::to_string(seed));
  fs::create_directories(dir);
  RunInfo info;
  info.method = method;
  info.task = "rte";
  info.model = "m/tiny";
  info.seed = seed;
  info.config_json = cfg.dump();
  info.eval_split = "holdout";
  auto log = RunLog::create((dir / "metrics.h5").string(), info);
  log.log_train(10, 1.0, 1e-3, 1, 1, 1);
  log.log_eval(10, {{"accuracy", holdout}});
  log.log_eval("dev", 10, {{"accuracy", dev}});
  log.set_status_completed();
}

TEST(ReportSelect, SeveralRootsAndMergedKeysPoolOneProtocolRunOnTwoDevices) {
  const fs::path base = fs::temp_directory_path() / ("lopa-merge-" + std::to_string(::getpid()));
  fs::remove_all(base);
  const nlohmann::json cpu = {{"device", "cpu"}};
  const nlohmann::json gpu = {{"device", "cuda"}, {"autocast", "none"}};
  // LoPA: seeds 1 and 2 on the GPU, seed 0 on the CPU; seed 1 ran on both (the CPU copy must not count twice).
  write_run(base / "cpu", "lopa", 0, cpu, .60, .50);
  write_run(base / "cpu", "lopa", 1, cpu, .99, .99);
  write_run(base / "gpu", "lopa", 1, gpu, .70, .60);
  write_run(base / "gpu", "lopa", 2, gpu, .80, .70);
  // PT: all three seeds on the GPU.
  for (int s = 0; s < 3; ++s) write_run(base / "gpu", "pt", s, gpu, .5, .40 + .05 * s);
  ReportOptions o;
  o.select_by = "holdout";
  o.report_split = "dev";

  // Without merging, device and autocast are configuration keys: LoPA's CPU and GPU runs are two groups.
  const Report apart = build_report(std::vector<std::string>{(base / "cpu").string(), (base / "gpu").string()}, o);
  EXPECT_EQ(apart.runs_found, 7);
  EXPECT_EQ(cell_of(apart, "lopa").num_configs, 2);
  EXPECT_EQ(cell_of(apart, "lopa").n, 2);
  EXPECT_TRUE(apart.excluded.empty());

  o.merge_keys = {"device", "autocast"};
  // The same roots, one of them named twice: each run is read once.
  const Report rep = build_report(std::vector<std::string>{(base / "gpu").string(), (base / "cpu").string(),
                                                           (base / "cpu").string()}, o);
  EXPECT_EQ(rep.runs_found, 7);
  EXPECT_EQ(rep.runs_used, 6);
  ASSERT_EQ(rep.excluded.size(), 1u);  // the first in path order is kept: .../cpu/lopa-s1 before .../gpu/lopa-s1
  EXPECT_NE(rep.excluded[0].path.find("gpu/lopa-s1"), std::string::npos) << rep.excluded[0].path;
  EXPECT_NE(rep.excluded[0].reason.find("seed 1 of this configuration is already in the table from"), std::string::npos)
      << rep.excluded[0].reason;
  const Cell& lopa = cell_of(rep, "lopa");
  EXPECT_EQ(lopa.num_configs, 1);
  EXPECT_EQ(lopa.n, 3);
  EXPECT_NEAR(lopa.mean, (.50 + .99 + .70) / 3, 1e-12);
  EXPECT_EQ(lopa.merged, "autocast=auto, device=cpu (seeds 0, 1); autocast=none, device=cuda (seed 2)");
  EXPECT_TRUE(cell_of(rep, "pt").merged.empty());  // one device: nothing pooled
  // Paired over seeds 0..2 across devices: LoPA - PT = .10, .54, .20.
  ASSERT_EQ(rep.paired.size(), 1u);
  EXPECT_EQ(rep.paired[0].pairs, 3);
  EXPECT_NEAR(rep.paired[0].mean_diff, (.10 + .54 + .20) / 3, 1e-12);
  const std::string md = format_report(rep, "md") + format_report_notes(rep);
  EXPECT_NE(md.find("runs that differ only in autocast, device are pooled"), std::string::npos) << md;
  EXPECT_NE(md.find("pooled over autocast=auto, device=cpu (seeds 0, 1); autocast=none, device=cuda (seed 2)"),
            std::string::npos) << md;

  // Keys that make rows or columns, keys that never separate runs, and unknown keys are refused.
  for (const char* bad : {"method", "rank", "seed", "devices"}) {
    o.merge_keys = {bad};
    EXPECT_THROW(build_report((base / "gpu").string(), o), lopa::Error) << bad;
  }
  o.merge_keys.clear();
  EXPECT_THROW(build_report(std::vector<std::string>{(base / "gpu").string(), (base / "nope").string()}, o), lopa::Error);
  fs::remove_all(base);
}

TEST(PairedComparison, HandDerivedTTest) {
  // Differences .10 .15 .05 .15: mean .1125, sd sqrt(.006875 / 3) = .047871, t = 4.7001 > t(0.975, 3) = 3.182.
  const std::map<int64_t, double> a = {{0, .80}, {1, .90}, {2, .85}, {3, .95}, {9, 1.0}};
  const std::map<int64_t, double> b = {{0, .70}, {1, .75}, {2, .80}, {3, .80}, {7, 0.0}};
  auto p = paired_comparison(a, b, false);
  EXPECT_EQ(p.pairs, 4);  // seeds 9 and 7 have no partner
  EXPECT_EQ(p.wins, 4);
  EXPECT_NEAR(p.mean_diff, 0.1125, 1e-12);
  EXPECT_NEAR(p.sd_diff, std::sqrt(0.006875 / 3), 1e-12);
  EXPECT_NEAR(p.t, 4.7001, 1e-4);
  EXPECT_TRUE(p.exceeds_noise);
  // A loss: lower is better, so the same numbers are 4 losses for a.
  auto q = paired_comparison(a, b, true);
  EXPECT_EQ(q.losses, 4);
  EXPECT_NEAR(q.mean_diff, -0.1125, 1e-12);
  EXPECT_TRUE(q.exceeds_noise);
  // Identical differences: no noise, any difference exceeds it; one pair decides nothing.
  EXPECT_TRUE(paired_comparison({{0, 1}, {1, 2}}, {{0, 0.5}, {1, 1.5}}, false).exceeds_noise);
  EXPECT_FALSE(paired_comparison({{0, 1}}, {{0, 0}}, false).exceeds_noise);
  EXPECT_DOUBLE_EQ(t_critical_975(1), 12.706);
  EXPECT_DOUBLE_EQ(t_critical_975(3), 3.182);
  EXPECT_DOUBLE_EQ(t_critical_975(30), 2.042);
}

TEST(RunLogSplits, SchemaTwoKeepsEachSplitsSteps) {
  const fs::path dir = fs::temp_directory_path() / ("lopa-splits-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "metrics.h5").string();
  {
    RunInfo info;
    info.method = "lopa";
    info.task = "sst2";
    info.model = "m";
    info.eval_split = "holdout";
    auto log = RunLog::create(path, info);
    log.log_eval(10, {{"accuracy", 0.5}});
    log.log_eval("dev", 10, {{"accuracy", 0.25}, {"f1", 0.125}});
    log.log_eval(20, {{"accuracy", 0.75}, {"loss", 1.5}});  // loss first seen: NaN at step 10
    log.set_status_completed();
  }
  // h5py (an independent reader) sees the documented layout.
  const std::string py = "/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); "
                         "print(f.attrs['schema_version'], f.attrs['eval_split'].decode() if isinstance(f.attrs['eval_split'], bytes) else f.attrs['eval_split'], "
                         "list(f['eval/holdout/step'][:]), list(f['eval/holdout/accuracy'][:]), list(f['eval/dev/step'][:]), "
                         "sorted(f['eval'].keys()))\" " + path + " > " + path + ".txt 2>&1";
  if (std::system(py.c_str()) == 0) {
    std::ifstream in(path + ".txt");
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "2 holdout [10, 20] [0.5, 0.75] [10] ['dev', 'holdout']");
  }
  const RunData r = RunLogReader::read(path);
  EXPECT_EQ(r.attr_int("schema_version"), 2);
  EXPECT_EQ(r.eval_split, "holdout");
  ASSERT_EQ(r.splits.size(), 2u);
  EXPECT_EQ(r.eval.step, (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(r.eval.metrics.at("accuracy"), (std::vector<double>{0.5, 0.75}));
  EXPECT_TRUE(std::isnan(r.eval.metrics.at("loss")[0]));
  EXPECT_EQ(r.splits.at("dev").step, (std::vector<int64_t>{10}));
  EXPECT_EQ(r.splits.at("dev").metrics.at("f1"), (std::vector<double>{0.125}));
  // Resume appends to each split.
  {
    auto log = RunLog::open_append(path);
    log.log_eval("dev", 30, {{"accuracy", 1.0}});
    log.log_eval(30, {{"accuracy", 0.875}});
    EXPECT_EQ(log.num_eval_points(), 5);
  }
  const RunData r2 = RunLogReader::read(path);
  EXPECT_EQ(r2.splits.at("dev").step, (std::vector<int64_t>{10, 30}));
  EXPECT_TRUE(std::isnan(r2.splits.at("dev").metrics.at("f1")[1]));
  EXPECT_EQ(r2.eval.step, (std::vector<int64_t>{10, 20, 30}));
  EXPECT_THROW(RunLog::open_append(path).log_eval("a/b", 1, {{"accuracy", 1}}), lopa::Error);
  fs::remove_all(dir);
}

TEST(RunLogSplits, SchemaOneLogsStillRead) {
  const fs::path dir = fs::temp_directory_path() / ("lopa-v1-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "metrics.h5").string();
  // A schema-1 log as the previous trainer wrote it (lopa eval --split test added test_accuracy at step 20).
  const std::string py =
      "/usr/bin/python3 -c \"import h5py,sys,json\nf=h5py.File(sys.argv[1],'w')\n"
      "f.attrs['schema_version']=1\nf.attrs['status']='completed'\nf.attrs['task']='synth-facts'\n"
      "f.attrs['config']=json.dumps({'eval-split': ''})\n"
      "t=f.create_group('train'); [t.create_dataset(n, data=[]) for n in ['step','loss','lr','grad_norm','tokens_per_s','elapsed_s']]\n"
      "e=f.create_group('eval'); e['step']=[10,20,20]; nan=float('nan')\n"
      "e['accuracy']=[0.5,0.75,nan]; e['test_accuracy']=[nan,nan,0.625]\n\" " + path;
  if (std::system(py.c_str()) != 0) GTEST_SKIP() << "/usr/bin/python3 with h5py is needed to write a schema-1 log";
  const RunData r = RunLogReader::read(path);
  EXPECT_EQ(r.eval_split, "dev");
  EXPECT_EQ(r.eval.step, (std::vector<int64_t>{10, 20, 20}));  // as logged
  EXPECT_EQ(r.splits.at("dev").step, (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(r.splits.at("dev").metrics.at("accuracy"), (std::vector<double>{0.5, 0.75}));
  EXPECT_EQ(r.splits.at("test").step, (std::vector<int64_t>{20}));
  EXPECT_EQ(r.splits.at("test").metrics.at("accuracy"), (std::vector<double>{0.625}));
  fs::remove_all(dir);
}
