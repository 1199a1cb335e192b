// build_report / format_report against hand-computed statistics on a directory of runs written with
// RunLog: means, sample standard deviations (n-1), n, best-per-column marks, the LoPA comparison,
// --select last, exclusions (running, failed, broken, no metric) and LaTeX structure.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "results/report.h"
#include "results/run_log.h"
#include "runtime/base/error.h"

namespace fs = std::filesystem;
using namespace lopa::results;

namespace {

struct Spec {
  std::string method, task, model = "../shared/models/tiny";
  int seed = 0;
  std::string m, r, lr = "0.001";
  double best = 0;  // the best accuracy; evals are best-0.1, best, best-0.05 (so last = best-0.05)
  int64_t params = 0;
};

// Writes one run like the trainer would: config JSON with every resolved key, a few train steps, evals.
void write_run(const fs::path& root, const Spec& s, const std::string& status = "completed") {
  nlohmann::json cfg = {{"method", s.method}, {"task", s.task}, {"model", s.model}, {"seed", s.seed},
                        {"lr", s.lr},         {"epochs", 3},    {"out", (root / "x").string()}};
  if (!s.m.empty()) cfg["num-virtual-tokens"] = std::stoi(s.m);
  if (!s.r.empty()) cfg["rank"] = std::stoi(s.r);
  const std::string id = s.method + "-" + s.task + "-m" + s.m + "-r" + s.r + "-lr" + s.lr + "-s" + std::to_string(s.seed) +
                         "-" + fs::path(s.model).filename().string();
  fs::create_directories(root / id);
  RunInfo info;
  info.method = s.method;
  info.task = s.task;
  info.model = s.model;
  info.seed = s.seed;
  info.config_json = cfg.dump();
  info.trainable_params = s.params;
  auto log = RunLog::create((root / id / "metrics.h5").string(), info);
  for (int i = 1; i <= 30; ++i) log.log_train(i, 2.0 / i + s.seed * 0.01, 1e-3, 1, 100, i);
  log.log_eval(10, {{"accuracy", s.best - 0.1}});
  log.log_eval(20, {{"accuracy", s.best}});
  log.log_eval(30, {{"accuracy", s.best - 0.05}});
  if (status == "completed") log.set_status_completed();
  if (status == "failed") log.set_status_failed("loss is NaN at step 31");
}

fs::path make_runs() {
  const fs::path root = fs::temp_directory_path() / ("lopa-report-" + std::to_string(::getpid()));
  fs::remove_all(root);
  for (auto [seed, v] : {std::pair{0, 0.80}, {1, 0.84}, {2, 0.82}}) write_run(root, {"lopa", "sst2", "../shared/models/tiny", seed, "10", "4", "0.001", v, 1000});
  for (auto [seed, v] : {std::pair{0, 0.60}, {1, 0.64}}) write_run(root, {"lopa", "rte", "../shared/models/tiny", seed, "10", "4", "0.001", v, 1000});
  write_run(root, {"lopa", "sst2", "../shared/models/tiny", 0, "20", "4", "0.001", 0.81, 1500});
  for (auto [seed, v] : {std::pair{0, 0.70}, {1, 0.75}, {2, 0.80}}) write_run(root, {"pt", "sst2", "../shared/models/tiny", seed, "10", "", "0.001", v, 640});
  write_run(root, {"pt", "rte", "../shared/models/tiny", 0, "10", "", "0.001", 0.66, 640});
  for (auto [seed, v] : {std::pair{0, 0.90}, {1, 0.86}}) write_run(root, {"lora", "sst2", "../shared/models/tiny", seed, "", "4", "0.001", v, 4096});
  for (auto [seed, v] : {std::pair{0, 0.58}, {1, 0.60}, {2, 0.62}}) write_run(root, {"lora", "rte", "../shared/models/tiny", seed, "", "4", "0.001", v, 4096});
  // FFT: two learning rates in one cell; the better group (lr=0.0001: 0.87, 0.91) is shown.
  write_run(root, {"fft", "sst2", "../shared/models/tiny", 0, "", "", "0.001", 0.85, 250000});
  for (auto [seed, v] : {std::pair{0, 0.87}, {1, 0.91}}) write_run(root, {"fft", "sst2", "../shared/models/tiny", seed, "", "", "0.0001", v, 250000});
  // Runs that must be listed, not tabulated.
  write_run(root, {"lopa", "sst2", "../shared/models/tiny", 9, "10", "4", "0.001", 0.99, 1000}, "running");
  write_run(root, {"lora", "rte", "../shared/models/tiny", 9, "", "4", "0.001", 0.99, 4096}, "failed");
  fs::create_directories(root / "broken");
  std::ofstream(root / "broken" / "metrics.h5") << "truncated garbage";
  {
    fs::create_directories(root / "noeval");
    RunInfo info;
    info.method = "pt";
    info.task = "sst2";
    info.model = "tiny";
    auto log = RunLog::create((root / "noeval" / "metrics.h5").string(), info);
    log.set_status_completed();
  }
  return root;
}

int row_of(const Report& rep, const std::string& label) {
  for (size_t i = 0; i < rep.rows.size(); ++i)
    if (rep.rows[i].label == label) return static_cast<int>(i);
  return -1;
}
int col_of(const Report& rep, const std::string& task) {
  for (size_t i = 0; i < rep.cols.size(); ++i)
    if (rep.cols[i].task == task) return static_cast<int>(i);
  return -1;
}
const Cell& cell_of(const Report& rep, const std::string& label, const std::string& task) {
  const Cell* c = rep.cell(row_of(rep, label), col_of(rep, task));
  if (!c) throw std::runtime_error("no cell " + label + " " + task);
  return *c;
}

class ReportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { root_ = new fs::path(make_runs()); }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static fs::path* root_;
};
fs::path* ReportTest::root_ = nullptr;

}  // namespace

TEST_F(ReportTest, MeansAndSampleStdsMatchHandComputed) {
  const Report rep = build_report(root_->string(), {});
  ASSERT_EQ(rep.rows.size(), 5u);  // paper order: FFT, LoRA, PT, LoPA m=10, LoPA m=20
  EXPECT_EQ(rep.rows[0].label, "FFT");
  EXPECT_EQ(rep.rows[1].label, "LoRA (r=4)");
  EXPECT_EQ(rep.rows[2].label, "PT (m=10)");
  EXPECT_EQ(rep.rows[3].label, "LoPA (m=10, r=4)");
  EXPECT_EQ(rep.rows[4].label, "LoPA (m=20, r=4)");
  EXPECT_EQ(rep.rows[0].server_adapter, "yes");
  EXPECT_EQ(rep.rows[1].server_adapter, "yes");
  EXPECT_EQ(rep.rows[2].server_adapter, "no");
  EXPECT_EQ(rep.rows[3].server_adapter, "no");
  EXPECT_EQ(rep.rows[3].trainable_params.at("tiny"), 1000);
  ASSERT_EQ(rep.cols.size(), 2u);
  EXPECT_EQ(rep.cols[0].task, "sst2");  // GLUE order, not alphabetical
  EXPECT_EQ(rep.cols[1].task, "rte");
  EXPECT_EQ(rep.cols[0].metric, "accuracy");

  // Hand-computed: mean, sample std sqrt(sum (x - mean)^2 / (n - 1)).
  const Cell& a = cell_of(rep, "LoPA (m=10, r=4)", "sst2");  // 0.80 0.84 0.82
  EXPECT_EQ(a.n, 3);
  EXPECT_NEAR(a.mean, 0.82, 1e-12);
  EXPECT_NEAR(a.std, 0.02, 1e-12);
  const Cell& b = cell_of(rep, "LoPA (m=10, r=4)", "rte");  // 0.60 0.64
  EXPECT_NEAR(b.mean, 0.62, 1e-12);
  EXPECT_NEAR(b.std, std::sqrt(0.0008), 1e-12);
  const Cell& c = cell_of(rep, "PT (m=10)", "sst2");  // 0.70 0.75 0.80
  EXPECT_NEAR(c.mean, 0.75, 1e-12);
  EXPECT_NEAR(c.std, 0.05, 1e-12);
  const Cell& d = cell_of(rep, "PT (m=10)", "rte");  // one seed: std undefined
  EXPECT_EQ(d.n, 1);
  EXPECT_NEAR(d.mean, 0.66, 1e-12);
  EXPECT_TRUE(std::isnan(d.std));
  const Cell& e = cell_of(rep, "LoRA (r=4)", "rte");  // 0.58 0.60 0.62
  EXPECT_NEAR(e.mean, 0.60, 1e-12);
  EXPECT_NEAR(e.std, 0.02, 1e-12);
  const Cell& f = cell_of(rep, "FFT", "sst2");  // best of two lr groups: (0.87, 0.91)
  EXPECT_EQ(f.n, 2);
  EXPECT_EQ(f.num_configs, 2);
  EXPECT_EQ(f.chosen_config, "lr=0.0001");
  EXPECT_NEAR(f.mean, 0.89, 1e-12);
  EXPECT_NEAR(f.std, std::sqrt(0.0008), 1e-12);
  EXPECT_EQ(rep.cell(row_of(rep, "FFT"), col_of(rep, "rte")), nullptr);

  // Best per column: sst2 -> FFT (0.89), rte -> PT (0.66); nothing else marked.
  int marked = 0;
  for (const auto& cell : rep.cells) marked += cell.best;
  EXPECT_EQ(marked, 2);
  EXPECT_TRUE(f.best);
  EXPECT_TRUE(d.best);
}

TEST_F(ReportTest, ComparisonSummaryMatchesHandComputed) {
  const Report rep = build_report(root_->string(), {});
  ASSERT_EQ(rep.comparisons.size(), 3u);
  for (const auto& cmp : rep.comparisons) {
    if (cmp.other == "lora") {  // sst2 0.82 vs 0.88 (loss), rte 0.62 vs 0.60 (win)
      EXPECT_EQ(cmp.cells, 2);
      EXPECT_EQ(cmp.wins, 1);
      EXPECT_NEAR(cmp.mean_rel_improvement, ((0.82 - 0.88) / 0.88 + (0.62 - 0.60) / 0.60) / 2, 1e-12);
    } else if (cmp.other == "pt") {  // sst2 0.82 vs 0.75 (win), rte 0.62 vs 0.66 (loss)
      EXPECT_EQ(cmp.cells, 2);
      EXPECT_EQ(cmp.wins, 1);
      EXPECT_NEAR(cmp.mean_rel_improvement, ((0.82 - 0.75) / 0.75 + (0.62 - 0.66) / 0.66) / 2, 1e-12);
    } else if (cmp.other == "fft") {  // sst2 only
      EXPECT_EQ(cmp.cells, 1);
      EXPECT_EQ(cmp.wins, 0);
      EXPECT_NEAR(cmp.mean_rel_improvement, (0.82 - 0.89) / 0.89, 1e-12);
    } else {
      ADD_FAILURE() << "unexpected comparison with " << cmp.other;
    }
  }
  const std::string notes = format_report_notes(rep);
  EXPECT_NE(notes.find("LoPA vs LoRA: LoPA better in 1 of 2 cells (0 ties); mean relative improvement -1.74%"),
            std::string::npos)
      << notes;
}

TEST_F(ReportTest, ExcludedRunsAreListedWithStatus) {
  const Report rep = build_report(root_->string(), {});
  EXPECT_EQ(rep.runs_found, 22);
  EXPECT_EQ(rep.runs_used, 18);
  ASSERT_EQ(rep.excluded.size(), 4u);
  std::map<std::string, ExcludedRun> by_path;
  for (const auto& e : rep.excluded) by_path[e.path] = e;
  EXPECT_EQ(by_path.at("broken/metrics.h5").status, "unreadable");
  EXPECT_EQ(by_path.at("noeval/metrics.h5").status, "completed");
  EXPECT_NE(by_path.at("noeval/metrics.h5").reason.find("accuracy"), std::string::npos);
  EXPECT_EQ(by_path.at("lopa-sst2-m10-r4-lr0.001-s9-tiny/metrics.h5").status, "running");
  EXPECT_EQ(by_path.at("lora-rte-m-r4-lr0.001-s9-tiny/metrics.h5").status, "failed");
  EXPECT_EQ(by_path.at("lora-rte-m-r4-lr0.001-s9-tiny/metrics.h5").reason, "loss is NaN at step 31");
  const std::string md = format_report(rep, "md");
  EXPECT_NE(md.find("broken/metrics.h5  [unreadable]"), std::string::npos) << md;
  EXPECT_NE(md.find("[failed]  loss is NaN at step 31"), std::string::npos) << md;
}

TEST_F(ReportTest, SelectLastUsesFinalEvaluation) {
  ReportOptions opts;
  opts.select = "last";
  const Report rep = build_report(root_->string(), opts);
  const Cell& a = cell_of(rep, "LoPA (m=10, r=4)", "sst2");  // 0.75 0.79 0.77
  EXPECT_NEAR(a.mean, 0.77, 1e-12);
  EXPECT_NEAR(a.std, 0.02, 1e-12);
  ReportOptions median;
  median.select = "median";
  EXPECT_THROW(build_report(root_->string(), median), lopa::Error);
}

TEST_F(ReportTest, MarkdownAndCsvShowTheValues) {
  const Report rep = build_report(root_->string(), {});
  const std::string md = format_report(rep, "md");
  EXPECT_NE(md.find("| Method | Params | Server adapter | sst2 (accuracy %) | rte (accuracy %) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| LoPA (m=10, r=4) | 1.0K | no | 82.00 ± 2.00 (3) | 62.00 ± 2.83 (2) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| FFT | 250.0K | yes | **89.00 ± 2.83** (2) | – |"), std::string::npos) << md;
  EXPECT_NE(md.find("| PT (m=10) | 640 | no | 75.00 ± 5.00 (3) | **66.00** (1) |"), std::string::npos) << md;
  EXPECT_NE(md.find("sample std (n-1)"), std::string::npos);

  const std::string csv = format_report(rep, "csv");
  std::istringstream in(csv);
  std::string header, line;
  std::getline(in, header);
  EXPECT_EQ(header, "method,label,m,r,trainable_params,server_adapter,sst2 accuracy mean,sst2 accuracy std,sst2 accuracy n,"
                    "rte accuracy mean,rte accuracy std,rte accuracy n");
  bool found = false;
  while (std::getline(in, line)) {
    if (line.rfind("lopa,\"LoPA (m=10, r=4)\",10,4,1000,no,", 0) != 0) continue;
    found = true;
    std::vector<std::string> f;
    std::stringstream ss(line.substr(line.find("no,") + 3));
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 6u) << line;
    EXPECT_NEAR(std::stod(f[0]), 0.82, 1e-12);
    EXPECT_NEAR(std::stod(f[1]), 0.02, 1e-12);
    EXPECT_EQ(f[2], "3");
    EXPECT_NEAR(std::stod(f[4]), std::sqrt(0.0008), 1e-12);
  }
  EXPECT_TRUE(found) << csv;
}

// With pdflatex absent (Debian image without TeX), the LaTeX is checked structurally: balanced
// environments and braces, and every tabular row spans exactly the declared number of columns.
TEST_F(ReportTest, LatexIsWellFormed) {
  // Add a second model so the header carries \multicolumn groups.
  const fs::path root2 = *root_ / "second-model";
  write_run(root2, {"lopa", "sst2", "/models/other", 0, "10", "4", "0.001", 0.7, 2000});
  write_run(root2, {"pt", "sst2", "/models/other", 0, "10", "", "0.001", 0.6, 900});
  const Report rep = build_report(root_->string(), {});
  fs::remove_all(root2);
  ASSERT_EQ(rep.cols.size(), 3u);
  const std::string tex = format_report(rep, "latex");

  std::vector<std::string> stack;
  std::regex env(R"(\\(begin|end)\{([a-z]+)\})");
  for (auto it = std::sregex_iterator(tex.begin(), tex.end(), env); it != std::sregex_iterator(); ++it) {
    if ((*it)[1] == "begin") stack.push_back((*it)[2]);
    else {
      ASSERT_FALSE(stack.empty()) << tex;
      EXPECT_EQ(stack.back(), (*it)[2]);
      stack.pop_back();
    }
  }
  EXPECT_TRUE(stack.empty());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(tex, m, std::regex(R"(\\begin\{tabular\}\{([lrc]+)\})")));
  const size_t ncols = m[1].str().size();
  EXPECT_EQ(ncols, 3u + 3u);
  std::istringstream in(tex);
  int rows = 0;
  bool in_tab = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("\\begin{tabular}", 0) == 0) in_tab = true;
    if (line.rfind("\\end{tabular}", 0) == 0) in_tab = false;
    if (line.rfind("%", 0) != 0) {
      int depth = 0;
      for (size_t i = 0; i < line.size(); ++i) {
        if (i && line[i - 1] == '\\') continue;
        depth += line[i] == '{';
        depth -= line[i] == '}';
        EXPECT_GE(depth, 0) << line;
      }
      EXPECT_EQ(depth, 0) << line;
    }
    if (!in_tab || line.find("\\\\") == std::string::npos) continue;
    ++rows;
    size_t span = 1;
    for (size_t i = 0; i < line.size(); ++i)
      if (line[i] == '&' && (i == 0 || line[i - 1] != '\\')) ++span;
    std::smatch mc;
    std::string rest = line;
    while (std::regex_search(rest, mc, std::regex(R"(\\multicolumn\{(\d+)\})"))) {
      span += std::stoi(mc[1]) - 1;
      rest = mc.suffix();
    }
    EXPECT_EQ(span, ncols) << line;
  }
  EXPECT_EQ(rows, 2 + 5);  // model header, column header, 5 method rows
  EXPECT_NE(tex.find("\\multicolumn{2}{c}{tiny}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("\\textbf{89.00 $\\pm$ 2.83}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("LoPA vs LoRA: LoPA better"), std::string::npos) << tex;
  if (std::system("command -v pdflatex >/dev/null 2>&1") == 0) {
    const fs::path dir = fs::temp_directory_path() / ("lopa-tex-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "t.tex") << "\\documentclass{article}\\begin{document}\n" << tex << "\\end{document}\n";
    EXPECT_EQ(std::system(("cd '" + dir.string() + "' && pdflatex -interaction=nonstopmode t.tex >/dev/null").c_str()), 0);
    fs::remove_all(dir);
  }
}

TEST(Report, RootMustBeADirectory) {
  EXPECT_THROW(build_report("/nonexistent/lopa/runs", {}), lopa::Error);
  const fs::path empty = fs::temp_directory_path() / ("lopa-report-empty-" + std::to_string(::getpid()));
  fs::create_directories(empty);
  const Report rep = build_report(empty.string(), {});
  EXPECT_EQ(rep.runs_found, 0);
  EXPECT_NO_THROW(format_report(rep, "md"));
  EXPECT_NO_THROW(format_report(rep, "latex"));
  EXPECT_THROW(format_report(rep, "html"), lopa::Error);
  fs::remove_all(empty);
}

// Sets `key` to the JSON `value` in the recorded config of every run under `dir` (h5py, as a run logged
// by a version of lopa that wrote that key would hold it).
void set_config_key(const fs::path& dir, const std::string& key, const std::string& value) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename() != "metrics.h5") continue;
    const std::string cmd = "/usr/bin/python3 -c \"import h5py,json,sys; f=h5py.File(sys.argv[1],'r+'); "
                            "c=json.loads(f.attrs['config']); c[sys.argv[2]]=json.loads(sys.argv[3]); "
                            "f.attrs['config']=json.dumps(c)\" '" + e.path().string() + "' '" + key + "' '" + value + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

// A run logged before a training key existed (its config has no such key) is the same configuration as
// a later run recording the key's default; a run with another value is another configuration.
TEST(Report, AKeyMissingFromAnOlderRunMeansItsDefault) {
  const fs::path root = fs::temp_directory_path() / ("lopa-report-newkey-" + std::to_string(::getpid()));
  fs::remove_all(root);
  write_run(root, {"lora", "sst2", "../shared/models/tiny", 0, "", "4", "0.001", 0.60, 4096});
  const auto add_key = [&](int seed, const std::string& value, double best) {
    // write_run's config with encoder-lr added, under its own directory.
    const fs::path sub = root / ("new-" + std::to_string(seed) + "-" + value);
    write_run(sub, {"lora", "sst2", "../shared/models/tiny", seed, "", "4", "0.001", best, 4096});
    set_config_key(sub, "encoder-lr", "\"" + value + "\"");
  };
  add_key(1, "1e-5", 0.70);  // the default
  add_key(2, "1e-4", 0.50);  // another configuration
  const Report rep = build_report(root.string(), {});
  const Cell& c = cell_of(rep, "LoRA (r=4)", "sst2");
  // Grouped: the default's seeds 0 and 1 (0.60, 0.70) beat the 1e-4 run; split, seed 1 alone would win.
  EXPECT_EQ(c.num_configs, 2);
  EXPECT_EQ(c.n, 2);
  EXPECT_NEAR(c.mean, 0.65, 1e-12);
  const std::string md = format_report(rep, "md");
  EXPECT_NE(md.find("2 configurations"), std::string::npos) << md;
  fs::remove_all(root);
}

// holdout-max changed behaviour when it came (runs before it held out an uncapped 10 %): a run without the
// key is a run with holdout-max = 0, not one at the new default of 1000.
TEST(Report, AKeyThatChangedBehaviourMeansItsOldValueWhenMissing) {
  const fs::path root = fs::temp_directory_path() / ("lopa-report-oldkey-" + std::to_string(::getpid()));
  fs::remove_all(root);
  write_run(root, {"pt", "sst2", "../shared/models/tiny", 0, "10", "", "0.01", 0.60, 2560});
  const auto add_key = [&](int seed, const std::string& value, double best) {
    const fs::path sub = root / ("new-" + std::to_string(seed) + "-" + value);
    write_run(sub, {"pt", "sst2", "../shared/models/tiny", seed, "10", "", "0.01", best, 2560});
    set_config_key(sub, "holdout-max", "\"" + value + "\"");
  };
  add_key(1, "0", 0.70);     // what the older run did
  add_key(2, "1000", 0.50);  // the new default: another configuration
  const Report rep = build_report(root.string(), {});
  const Cell& c = cell_of(rep, "PT (m=10)", "sst2");
  EXPECT_EQ(c.num_configs, 2);
  EXPECT_EQ(c.n, 2);
  EXPECT_NEAR(c.mean, 0.65, 1e-12);
  fs::remove_all(root);
}

// Checkpoint frequency is not a hyperparameter: seeds written with and without save-every form one
// configuration, and the table does not name the key.
TEST(Report, CheckpointFrequencyDoesNotSplitAConfiguration) {
  const fs::path root = fs::temp_directory_path() / ("lopa-report-checkpoints-" + std::to_string(::getpid()));
  fs::remove_all(root);
  write_run(root, {"pt", "sst2", "../shared/models/tiny", 0, "10", "", "0.01", 0.60, 2560});
  const fs::path sub = root / "resumable";
  write_run(sub, {"pt", "sst2", "../shared/models/tiny", 1, "10", "", "0.01", 0.70, 2560});
  set_config_key(sub, "save-every", "100");
  const Report rep = build_report(root.string(), {});
  const Cell& c = cell_of(rep, "PT (m=10)", "sst2");
  EXPECT_EQ(c.num_configs, 1);
  EXPECT_EQ(c.n, 2);
  EXPECT_NEAR(c.mean, 0.65, 1e-12);
  const std::string md = format_report(rep, "md");
  EXPECT_EQ(md.find("save-every"), std::string::npos) << md;
  fs::remove_all(root);
}
