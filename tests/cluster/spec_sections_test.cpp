// Issue 17 / 16: [grid.METHOD] axes crossed only into that method's cells (a learning rate per method)
// and [download] hub ids named in the warnings for missing checkpoints. Cells, values and ids are
// derived by hand (ids hashed by an independent Python FNV-1a-64 of the sorted key=value lines); every
// error is compared with its whole message; the paper's specs plan into 24 headline cells x 4 methods
// x 3 seeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "runtime/base/error.h"
#include "tests/cluster/test_util.h"

namespace lopa::cluster {
namespace {

namespace fs = std::filesystem;
using Keys = std::map<std::string, std::string>;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

class SpecSections : public ::testing::Test {
 protected:
  void SetUp() override { dir = test::make_temp_dir("sections"); }
  void TearDown() override { fs::remove_all(dir); }
  std::string spec_file(const std::string& text, const std::string& name = "spec.ini") {
    const auto path = dir + "/" + name;
    test::write_text(path, replace_all(replace_all(text, "ROOT", dir + "/runs"), "DIR", dir));
    return path;
  }
  std::string error_of(const std::string& text) {
    const auto path = spec_file(text);
    try {
      make_plan(read_sweep_spec(path));
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  std::string dir;
};

// The issue's example: lora crosses its own learning rates, pt takes [fixed].
const char* kPerMethodLr = R"(name = pm
root = ROOT
[grid]
model = m
task = sst2
method = pt, lora
[grid.lora]
lr = 1e-4, 3e-4
[fixed]
lr = 0.01
)";

TEST_F(SpecSections, MethodGridCrossesOnlyItsMethodAndReplacesFixed) {
  const auto spec = read_sweep_spec(spec_file(kPerMethodLr));
  ASSERT_EQ(spec.method_grid.size(), 1u);
  EXPECT_EQ(spec.method_grid.at("lora").at("lr"), (std::vector<std::string>{"1e-4", "3e-4"}));
  const auto plan = make_plan(spec);
  ASSERT_EQ(plan.cells.size(), 3u);
  // Methods in [grid] order, then the method's axis in the order written.
  EXPECT_EQ(plan.cells[0].keys, (Keys{{"method", "pt"}, {"model", "m"}, {"task", "sst2"}, {"lr", "0.01"}}));
  EXPECT_EQ(plan.cells[1].keys, (Keys{{"method", "lora"}, {"model", "m"}, {"task", "sst2"}, {"lr", "1e-4"}}));
  EXPECT_EQ(plan.cells[2].keys, (Keys{{"method", "lora"}, {"model", "m"}, {"task", "sst2"}, {"lr", "3e-4"}}));
  // Ids from an independent FNV-1a-64 (Python) of "lr=..\nmethod=..\nmodel=m\ntask=sst2\n".
  EXPECT_EQ(plan.cells[0].id, "m-sst2-pt-bb7cf144");
  EXPECT_EQ(plan.cells[1].id, "m-sst2-lora-10ff31ec");
  EXPECT_EQ(plan.cells[2].id, "m-sst2-lora-9e9c23a4");
  // plan.json lists each cell's own learning rate.
  const auto j = nlohmann::json::parse(plan_json(plan));
  ASSERT_EQ(j["cells"].size(), 3u);
  EXPECT_EQ(j["cells"][0]["keys"]["lr"], "0.01");
  EXPECT_EQ(j["cells"][1]["keys"]["lr"], "1e-4");
  EXPECT_EQ(j["cells"][2]["keys"]["lr"], "3e-4");
  // And the cell config given to lopa train.
  EXPECT_NE(cell_config_text(plan, plan.cells[2]).find("\nlr = 3e-4\n"), std::string::npos);
}

TEST_F(SpecSections, MethodAxesCrossWithTheGridAndDifferPerMethod) {
  // Each method its own lr and rank; seeds crossed for all. lopa: 2 lr x 1 rank x 2 seeds = 4; pt: 1 x 2
  // = 2 (no rank); lora: 1 lr x 2 ranks x 2 seeds = 4. 10 cells.
  const auto plan = make_plan(read_sweep_spec(spec_file(R"(name = pm2
root = ROOT
[grid]
model = m
task = rte
method = lopa, pt, lora
seed = 0, 1
[grid.lopa]
lr = 0.001, 0.003
rank = 4
[grid.pt]
lr = 0.001
[grid.lora]
lr = 0.0001
rank = 8, 16
[fixed]
num-virtual-tokens = 10
)")));
  std::multiset<std::string> got;
  for (const auto& c : plan.cells) {
    std::string s = c.keys.at("method") + " lr=" + c.keys.at("lr") + " seed=" + c.keys.at("seed");
    if (c.keys.count("rank")) s += " r=" + c.keys.at("rank");
    if (c.keys.count("num-virtual-tokens")) s += " m=" + c.keys.at("num-virtual-tokens");
    got.insert(s);
  }
  const std::multiset<std::string> expected = {
      "lopa lr=0.001 seed=0 r=4 m=10", "lopa lr=0.001 seed=1 r=4 m=10", "lopa lr=0.003 seed=0 r=4 m=10",
      "lopa lr=0.003 seed=1 r=4 m=10", "pt lr=0.001 seed=0 m=10",        "pt lr=0.001 seed=1 m=10",
      "lora lr=0.0001 seed=0 r=8",     "lora lr=0.0001 seed=1 r=8",     "lora lr=0.0001 seed=0 r=16",
      "lora lr=0.0001 seed=1 r=16"};
  EXPECT_EQ(got, expected);
  std::set<std::string> ids;
  for (const auto& c : plan.cells) ids.insert(c.id);
  EXPECT_EQ(ids.size(), 10u);
}

TEST_F(SpecSections, MethodGridGivesTheSameCellsAsOneSpecPerMethod) {
  // A key from [grid.METHOD] or from [fixed] is the same key: merging per-method specs keeps every id.
  const auto merged = make_plan(read_sweep_spec(spec_file(kPerMethodLr, "merged.ini")));
  const auto pt = make_plan(read_sweep_spec(
      spec_file("name = a\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2\nmethod = pt\n[fixed]\nlr = 0.01\n", "pt.ini")));
  const auto lora = make_plan(read_sweep_spec(
      spec_file("name = b\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2\nmethod = lora\nlr = 1e-4, 3e-4\n", "lora.ini")));
  std::set<std::string> a, b;
  for (const auto& c : merged.cells) a.insert(c.id);
  for (const auto* p : {&pt, &lora})
    for (const auto& c : p->cells) b.insert(c.id);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 3u);
}

TEST_F(SpecSections, LopaSweepPlanListsEachCellsValues) {
  const auto path = spec_file(kPerMethodLr);
  std::string out;
  ASSERT_EQ(test::run(std::string(LOPA_BIN) + " sweep plan --spec " + path, &out), 0) << out;
  EXPECT_NE(out.find("pm: 3 cells under " + dir + "/runs\n  cells per method: pt 1, lora 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  0  m-sst2-pt-bb7cf144  lr=0.01 method=pt model=m task=sst2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  1  m-sst2-lora-10ff31ec  lr=1e-4 method=lora model=m task=sst2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  2  m-sst2-lora-9e9c23a4  lr=3e-4 method=lora model=m task=sst2\n"), std::string::npos) << out;
}

TEST_F(SpecSections, BadMethodSectionsAreOneLineErrors) {
  const auto path = dir + "/spec.ini";
  const std::string head = "name = bad\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2\nmethod = pt, lora\n";  // lines 1-6
  const std::string sections = " (expected [grid], [grid.METHOD], [fixed], [download], [launch])";
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {head + "[grid.lopa]\nlr = 0.1\n", path + ": [grid.lopa] at line 7: 'lopa' is not a method of this sweep (method = pt, lora)"},
      {head + "[grid.sft]\n", path + ": [grid.sft] at line 7: 'sft' is not a method of this sweep (method = pt, lora)"},
      {"name = bad\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2\n[fixed]\nmethod = pt\n[grid.lora]\nlr = 1\n",
       path + ": [grid.lora] at line 8: 'lora' is not a method of this sweep (method = pt)"},
      {head + "[grid.lora.x]\nlr = 0.1\n", path + ": [grid.lora.x] at line 7: 'lora.x' is not a method of this sweep (method = pt, lora)"},
      {head + "[grid.]\nlr = 0.1\n", path + ": unknown section [grid.] at line 7" + sections},
      {head + "[gridx]\nlr = 0.1\n", path + ": unknown section [gridx] at line 7" + sections},
      {head + "[grid.lora]\nfoo = 1\n", path + ": unknown training key 'foo' in [grid.lora] at line 8 (lopa train --help lists the keys)"},
      {head + "lr = 0.1\n[grid.lora]\nlr = 0.2\n", path + ": lr is in both [grid] and [grid.lora] at line 9 (give it in one)"},
      {head + "[grid.pt]\nrank = 4\n", path + ": [grid.pt] rank at line 8 is not used by method pt (rank applies to lopa,lora)"},
      {head + "[grid.lora]\nnum-virtual-tokens = 5\n",
       path + ": [grid.lora] num-virtual-tokens at line 8 is not used by method lora (num-virtual-tokens applies to lopa,pt,idpg,prefix)"},
      {head + "[grid.lora]\nmethod = pt\n", path + ": [grid.lora] method at line 8: a method's own section cannot change its method"},
      {head + "[grid.lora]\nlr = fast\n", path + ": [grid.lora] at line 8: lr = 'fast': not a number"},
      {head + "[grid.lora]\nlr = 0.1, -1\n", path + ": [grid.lora] at line 8: lr = '-1': must be >= 0"},
      {head + "[grid.lora]\nlr =\n", path + ": [grid.lora] lr is empty (give one or more comma-separated values)"},
      {head + "[grid.lora]\nlr = 1, 1\n", path + ": [grid.lora] lr = '1, 1': value '1' is listed twice"},
      {head + "[grid.lora]\nlr = 1,,2\n", path + ": [grid.lora] lr = '1,,2': empty value in the list"},
      {head + "[grid.lora]\nlr = 1\nlr = 2\n", path + ": key 'grid.lora.lr' is given more than once"},
      {head + "[grid.lora]\nlr = 1\n[fixed]\nrank = 2\n[grid.lora]\nlr = 2\n", path + ": key 'grid.lora.lr' is given more than once"},
      {head + "[grid.lora]\ntp = 1\n[launch]\ntp = 1\n", path + ": tp is in [launch] and in [grid.lora] at line 8; give it once"},
      // [fixed] replaced in every method that uses it would be given to no cell.
      {"name = bad\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2\nmethod = lora\n[grid.lora]\nlr = 1\n[fixed]\nlr = 2\n",
       path + ": [fixed] lr is taken by no method: [grid.lora] sets it for every method that uses it"},
      {"name = bad\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2\nmethod = pt, lopa, lora\n[grid.lopa]\nrank = 1\n[grid.lora]\n"
       "rank = 2\n[fixed]\nrank = 3\n",
       path + ": [fixed] rank is taken by no method: [grid.lopa], [grid.lora] set it for every method that uses it"},
      // model only for lora: pt cells would have none.
      {"name = bad\nroot = ROOT\n[grid]\ntask = sst2\nmethod = pt, lora\n[grid.lora]\nmodel = m\n",
       path + ": no 'model' for method pt (give it in [grid], [fixed] or [grid.METHOD]; every cell needs one)"},
  };
  for (const auto& c : cases) {
    const auto msg = error_of(c.text);
    EXPECT_EQ(msg, c.expected) << "spec:\n" << c.text;
  }
  // Per method, model and task may come from the method's own section (every method has one), and an
  // empty [grid.METHOD] of a method of the sweep crosses nothing.
  EXPECT_EQ(error_of("name = ok\nroot = ROOT\n[grid]\nmethod = pt, lora\n[grid.pt]\nmodel = a\ntask = sst2\n[grid.lora]\n"
                     "model = b\ntask = rte, mrpc\n[grid.lopa]\n"),
            path + ": [grid.lopa] at line 11: 'lopa' is not a method of this sweep (method = pt, lora)");
  const auto plan = make_plan(read_sweep_spec(spec_file(
      "name = ok\nroot = ROOT\n[grid]\nmethod = pt, lora\n[grid.pt]\nmodel = a\ntask = sst2\n[grid.lora]\nmodel = b\n"
      "task = rte, mrpc\n")));
  ASSERT_EQ(plan.cells.size(), 3u);
  EXPECT_EQ(plan.cells[0].keys, (Keys{{"method", "pt"}, {"model", "a"}, {"task", "sst2"}}));
  EXPECT_EQ(plan.cells[1].keys, (Keys{{"method", "lora"}, {"model", "b"}, {"task", "rte"}}));
  EXPECT_EQ(plan.cells[2].keys, (Keys{{"method", "lora"}, {"model", "b"}, {"task", "mrpc"}}));
  EXPECT_EQ(make_plan(read_sweep_spec(spec_file(kPerMethodLr + std::string("[grid.pt]\n")))).cells.size(), 3u);
}

TEST_F(SpecSections, BadDownloadSectionsAreOneLineErrors) {
  const auto path = dir + "/spec.ini";
  // Lines 1-9: models/a as model, enc as encoder, data as data-dir.
  const std::string head = "name = bad\nroot = ROOT\n[grid]\nmodel = models/a\ntask = sst2\nmethod = lopa\n[fixed]\n"
                           "encoder = enc\ndata-dir = data\n[download]\n";
  const std::string hub = ": not a Hugging Face hub id (expected owner/name of letters, digits, '-', '_', '.')";
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {head + "models/a = roberta\n", path + ": [download] models/a = 'roberta' at line 11" + hub},
      {head + "models/a = a/b/c\n", path + ": [download] models/a = 'a/b/c' at line 11" + hub},
      {head + "models/a = /b\n", path + ": [download] models/a = '/b' at line 11" + hub},
      {head + "models/a = a/\n", path + ": [download] models/a = 'a/' at line 11" + hub},
      {head + "models/a = a b/c\n", path + ": [download] models/a = 'a b/c' at line 11" + hub},
      {head + "models/a =\n", path + ": [download] models/a at line 11 is empty (give its Hugging Face hub id, owner/name)"},
      {head + "models/b = o/b\n",
       path + ": [download] models/b at line 11: no model or encoder of this sweep is that directory (they are: enc, models/a)"},
      {head + "data = o/data\n",
       path + ": [download] data at line 11: no model or encoder of this sweep is that directory (they are: enc, models/a)"},
      {head + "models/a = o/a\nmodels/a = o/b\n", path + ": key 'download.models/a' is given more than once"},
      {head + "models/a = o/a\n./models/a/ = o/b\n", path + ": [download] ./models/a/ at line 12 is the same directory as 'models/a'"},
  };
  for (const auto& c : cases) EXPECT_EQ(error_of(c.text), c.expected) << "spec:\n" << c.text;
  // Written another way, the directory is still the spec's.
  const auto spec = read_sweep_spec(spec_file(head + "./models/a/ = Org-1/name_2.v3\nenc = o/e\n"));
  EXPECT_EQ(spec.download, (Keys{{"models/a", "Org-1/name_2.v3"}, {"enc", "o/e"}}));
  EXPECT_EQ(hub_id_of(spec, "models/a"), "Org-1/name_2.v3");
  EXPECT_EQ(hub_id_of(spec, "models//a/"), "Org-1/name_2.v3");
  EXPECT_EQ(hub_id_of(spec, "models/b"), "");
}

TEST_F(SpecSections, MissingCheckpointsNameTheirHubIdAndCommand) {
  fs::create_directories(dir + "/models/here");
  // Lines: an existing model (no warning even though mapped), a missing one mapped, a missing encoder
  // mapped (relative, from the current directory), a missing data-dir (not a checkpoint: no hub id).
  const auto path = spec_file(R"(name = w
root = ROOT
[grid]
model = DIR/models/here, DIR/models/gone
task = sst2
method = lopa
[fixed]
encoder = rel-models-enc-0x
data-dir = DIR/nodata
[download]
DIR/models/here = org/here
DIR/models/gone = org/gone-1.5
rel-models-enc-0x = enc-org/enc
)");
  std::ostringstream err;
  const auto plan = make_plan(read_sweep_spec(path), &err);
  EXPECT_EQ(plan.cells.size(), 2u);
  std::error_code ec;
  const std::string cwd = fs::current_path(ec).string();
  const std::string fine = "fine if it exists where the cells run)";
  ASSERT_EQ(plan.warnings.size(), 3u) << err.str();
  EXPECT_EQ(plan.warnings[0], path + ": data-dir = '" + dir + "/nodata' does not exist here (" + fine);
  EXPECT_EQ(plan.warnings[1], path + ": encoder = 'rel-models-enc-0x' does not exist here (from " + cwd + "; " + fine +
                                  "; hub id enc-org/enc: huggingface-cli download enc-org/enc --local-dir rel-models-enc-0x");
  EXPECT_EQ(plan.warnings[2], path + ": model = '" + dir + "/models/gone' does not exist here (" + fine +
                                  "; hub id org/gone-1.5: huggingface-cli download org/gone-1.5 --local-dir " + dir +
                                  "/models/gone");
  std::string expected_err;
  for (const auto& w : plan.warnings) expected_err += "lopa sweep: warning: " + w + "\n";
  EXPECT_EQ(err.str(), expected_err);
  // Through the binary, from another directory (the relative encoder is then missing from there).
  std::string out;
  ASSERT_EQ(test::run("cd " + dir + " && { " + std::string(LOPA_BIN) + " sweep plan --spec " + path + " 2>&1 >/dev/null; }", &out), 0)
      << out;
  EXPECT_EQ(out, replace_all(expected_err, "(from " + cwd + ";", "(from " + dir + ";"));
}

// The paper's specs (experiments/sweeps/paper): every spec plans, its checkpoints are missing here and
// each is named with its hub id; the headline cells are 6 GLUE tasks + 6 FMs x (MBPP, CruxEval-I,
// CruxEval-O) = 24, each with PT, IDPG, LoPA and LoRA and 3 seeds.
TEST_F(SpecSections, PaperSpecsPlanIntoTheHeadlineCells) {
  const std::string paper = std::string(LOPA_SOURCE_DIR) + "/experiments/sweeps/paper/";
  struct Expect {
    std::string file;
    size_t cells, headline;
    std::string prompt_lr, lora_lr, lopa_rank;
    size_t checkpoints;  // model and encoder directories, each mapped in [download]
  };
  const std::vector<Expect> expects = {
      {"glue.ini", 72, 6, "0.0001", "0.0001", "4", 1},
      {"mbpp.ini", 72, 6, "0.001", "0.0001", "1", 7},
      {"cruxeval.ini", 144, 12, "0.001", "0.0001", "1", 7},
  };
  struct Cwd {  // where no models/ or data/ exist, restored however the test ends
    fs::path old = fs::current_path();
    explicit Cwd(const std::string& d) { fs::current_path(d); }
    ~Cwd() { fs::current_path(old); }
  } cwd(dir);
  size_t total = 0;
  std::set<std::string> headline;
  for (const auto& e : expects) {
    SCOPED_TRACE(e.file);
    std::ostringstream err;
    Plan plan;
    ASSERT_NO_THROW(plan = make_plan(read_sweep_spec(paper + e.file), &err));
    EXPECT_EQ(plan.cells.size(), e.cells);
    total += plan.cells.size();
    std::map<std::string, int> per_method;
    std::set<std::string> cells_here;
    for (const auto& c : plan.cells) {
      const auto& m = c.keys.at("method");
      ++per_method[m];
      cells_here.insert(c.keys.at("model") + "|" + c.keys.at("task"));
      headline.insert(c.keys.at("model") + "|" + c.keys.at("task"));
      EXPECT_EQ(c.keys.at("lr"), m == "lora" ? e.lora_lr : e.prompt_lr) << c.id;
      const std::string rank = m == "lopa" ? e.lopa_rank : m == "lora" ? "16" : "";
      EXPECT_EQ(c.keys.count("rank") ? c.keys.at("rank") : "", rank) << c.id;
      EXPECT_EQ(c.keys.count("encoder"), (m == "lopa" || m == "idpg") ? 1u : 0u) << c.id;
    }
    EXPECT_EQ(cells_here.size(), e.headline);
    EXPECT_EQ(per_method, (std::map<std::string, int>{{"idpg", int(e.cells / 4)}, {"lopa", int(e.cells / 4)},
                                                      {"lora", int(e.cells / 4)}, {"pt", int(e.cells / 4)}}));
    // Every checkpoint directory is mapped, and each missing one is named with its download command.
    EXPECT_EQ(plan.spec.download.size(), e.checkpoints);
    size_t with_command = 0;
    for (const auto& w : plan.warnings)
      if (w.find("huggingface-cli download ") != std::string::npos) ++with_command;
    std::set<std::string> dirs;
    for (const auto& c : plan.cells)
      for (const char* k : {"model", "encoder"})
        if (c.keys.count(k)) dirs.insert(std::string(k) + "=" + c.keys.at(k));
    EXPECT_EQ(with_command, dirs.size()) << err.str();  // one per (key, directory): roberta-large twice on GLUE
    for (const auto& [dir_, id] : plan.spec.download)
      EXPECT_NE(err.str().find("huggingface-cli download " + id + " --local-dir " + dir_ + "\n"), std::string::npos) << id;
    // lopa sweep plan prints the plan and the warnings, exit 0.
    std::string out;
    EXPECT_EQ(test::run(std::string(LOPA_BIN) + " sweep plan --spec " + paper + e.file + " 2>/dev/null", &out), 0) << out;
    EXPECT_NE(out.find(": " + std::to_string(e.cells) + " cells under "), std::string::npos) << out;
  }
  EXPECT_EQ(headline.size(), 24u);
  EXPECT_EQ(total, 24u * 4 * 3);
}

// experiments/sweeps/method-table/all.ini is the three per-learning-rate specs in one: the same cells.
TEST_F(SpecSections, MethodTableInOneSpecHasTheCellsOfTheThree) {
  const std::string table = std::string(LOPA_SOURCE_DIR) + "/experiments/sweeps/method-table/";
  const auto one = make_plan(read_sweep_spec(table + "all.ini"));
  std::set<std::string> a, b;
  for (const auto& c : one.cells) a.insert(c.id);
  for (const char* f : {"prompt.ini", "lora.ini", "fft.ini"})
    for (const auto& c : make_plan(read_sweep_spec(table + f)).cells) b.insert(c.id);
  EXPECT_EQ(a.size(), one.cells.size());
  EXPECT_EQ(a.size(), 36u);  // 6 methods x 2 tasks x 3 seeds
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace lopa::cluster
