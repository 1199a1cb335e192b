// Sweep specs and plans: cell counts with method-dependent axes (hand-counted), stable ids (FNV-1a
// test vectors and ids hashed by an independent Python implementation), and one-line errors for
// bad specs that name the spec file and the key.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "cluster/train_keys.h"
#include "runtime/base/error.h"
#include "tests/cluster/test_util.h"

namespace lopa::cluster {
namespace {

using test::make_temp_dir;
using test::write_text;

const char* kGlueSmall = R"(name = glue-small
root = ROOT       # each cell gets RUN_DIR = root/<cell-id>

[grid]                          # comma-separated values; the product is the set of cells
model = ../shared/models/stories260K
task = sst2, rte, mrpc
method = lopa, pt, idpg, lora, fft
num-virtual-tokens = 5, 10
rank = 1, 4                     # only crosses methods that use it
seed = 0, 1, 2

[fixed]
epochs = 3

[launch]
executor = local
ranks-per-cell = 2
tp = 2
)";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override { dir = make_temp_dir("plan"); }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string spec_file(const std::string& text, const std::string& name = "spec.ini") {
    const auto path = dir + "/" + name;
    write_text(path, replace_all(text, "ROOT", dir + "/runs"));
    return path;
  }
  // The message of the lopa::Error that reading and planning `text` throws ("" when none).
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

TEST(Fnv1a64, PublishedTestVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST_F(PlanTest, MethodDependentAxesAreCrossedOnlyForMethodsThatUseThem) {
  const auto plan = make_plan(read_sweep_spec(spec_file(kGlueSmall)));
  // Per (task, seed): lopa m x r = 4, pt m = 2, idpg m = 2, lora r = 2, fft 1 -> 11; x 3 tasks x 3 seeds.
  ASSERT_EQ(plan.cells.size(), 99u);
  std::map<std::string, int> per_method;
  std::set<std::string> ids, runs;
  for (const auto& c : plan.cells) {
    const auto& m = c.keys.at("method");
    ++per_method[m];
    ids.insert(c.id);
    runs.insert(canonical_text(c.keys));
    EXPECT_EQ(c.keys.count("rank"), (m == "lopa" || m == "lora") ? 1u : 0u) << c.id;
    EXPECT_EQ(c.keys.count("num-virtual-tokens"), (m == "lora" || m == "fft") ? 0u : 1u) << c.id;
    EXPECT_EQ(c.keys.at("epochs"), "3");
    EXPECT_EQ(c.keys.at("tp"), "2");  // [launch] tp goes to every cell
    EXPECT_EQ(c.keys.at("model"), "../shared/models/stories260K");
  }
  EXPECT_EQ(per_method["lopa"], 36);
  EXPECT_EQ(per_method["pt"], 18);
  EXPECT_EQ(per_method["idpg"], 18);
  EXPECT_EQ(per_method["lora"], 18);
  EXPECT_EQ(per_method["fft"], 9);
  EXPECT_EQ(ids.size(), 99u);   // no two cells share an id
  EXPECT_EQ(runs.size(), 99u);  // and no two cells are the same run
  EXPECT_EQ(plan.spec.root, dir + "/runs");
}

TEST_F(PlanTest, CellIdIsSlugPlusHashOfTheCanonicalKeys) {
  const auto plan = make_plan(read_sweep_spec(spec_file(kGlueSmall)));
  std::set<std::string> ids;
  for (const auto& c : plan.cells) ids.insert(c.id);
  // Hashes from an independent FNV-1a-64 (Python) of the sorted key=value lines:
  //   epochs=3 method=pt model=../shared/models/stories260K num-virtual-tokens=5 seed=0 task=sst2 tp=2
  EXPECT_TRUE(ids.count("stories260K-sst2-pt-m5-s0-3a485685"));
  //   epochs=3 method=lora model=../shared/models/stories260K rank=4 seed=2 task=mrpc tp=2
  EXPECT_TRUE(ids.count("stories260K-mrpc-lora-r4-s2-3bc72f0d"));
  const std::map<std::string, std::string> keys = {{"epochs", "3"}, {"method", "pt"}, {"model", "../shared/models/stories260K"},
                                                   {"num-virtual-tokens", "5"}, {"seed", "0"}, {"task", "sst2"}, {"tp", "2"}};
  EXPECT_EQ(canonical_text(keys),
            "epochs=3\nmethod=pt\nmodel=../shared/models/stories260K\nnum-virtual-tokens=5\nseed=0\ntask=sst2\ntp=2\n");
}

TEST_F(PlanTest, IdsAreStableAcrossRunsAndKeyOrder) {
  const auto a = make_plan(read_sweep_spec(spec_file(kGlueSmall, "a.ini")));
  const auto a2 = make_plan(read_sweep_spec(spec_file(kGlueSmall, "a.ini")));
  // The same sweep written differently: sections, keys and values in another order, other spacing.
  const char* reordered = R"(root=ROOT
name=glue-small
[launch]
tp=2
ranks-per-cell = 2
[fixed]
epochs=3
[grid]
seed = 2,1,0
rank=4,1
method = fft,lora, idpg ,pt,lopa
num-virtual-tokens = 10, 5
task = mrpc, sst2, rte
model = ../shared/models/stories260K
)";
  const auto b = make_plan(read_sweep_spec(spec_file(reordered, "b.ini")));
  std::vector<std::string> ia, ia2, ib;
  for (const auto& c : a.cells) ia.push_back(c.id);
  for (const auto& c : a2.cells) ia2.push_back(c.id);
  for (const auto& c : b.cells) ib.push_back(c.id);
  EXPECT_EQ(ia, ia2);  // same file: same ids in the same order
  std::sort(ia.begin(), ia.end());
  std::sort(ib.begin(), ib.end());
  EXPECT_EQ(ia, ib);  // another order: the same set of ids
}

TEST_F(PlanTest, FixedKeysAMethodDoesNotUseAreLeftOut) {
  const auto plan = make_plan(read_sweep_spec(spec_file(R"(name = f
root = ROOT
[grid]
method = pt, lora
[fixed]
model = m
task = rte
rank = 8
num-virtual-tokens = 20
)")));
  ASSERT_EQ(plan.cells.size(), 2u);
  for (const auto& c : plan.cells) {
    if (c.keys.at("method") == "pt") {
      EXPECT_FALSE(c.keys.count("rank"));
      EXPECT_EQ(c.keys.at("num-virtual-tokens"), "20");
    } else {
      EXPECT_EQ(c.keys.at("rank"), "8");
      EXPECT_FALSE(c.keys.count("num-virtual-tokens"));
    }
  }
  // The config file given to `lopa train --config` holds exactly the cell's keys.
  const auto text = cell_config_text(plan, plan.cells[0]);
  EXPECT_NE(text.find("method = pt\n"), std::string::npos);
  EXPECT_NE(text.find("num-virtual-tokens = 20\n"), std::string::npos);
  EXPECT_EQ(text.find("rank"), std::string::npos);
}

TEST_F(PlanTest, BadSpecsAreOneLineErrorsNamingFileAndKey) {
  const std::string head = "name = bad\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2\n";
  const auto path = dir + "/spec.ini";
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {head + "method = lopa\nfoo = 1\n", path + ": unknown training key 'foo' in [grid]"},
      {head + "method = lopa\n[fixd]\nepochs = 1\n", path + ": unknown section [fixd]"},
      {head + "method = lopa\n[launch]\nnodez = 2\n", path + ": unknown key 'nodez' in [launch]"},
      {head + "method = lopa\nrank =\n", path + ": [grid] rank is empty"},
      {head + "method = lopa\nrank = 0, 4\n", path + ": [grid]: rank = '0': must be > 0"},
      {head + "method = lopa\nrank = -1\n", path + ": [grid]: rank = '-1': must be > 0"},
      {head + "method = lopa\nrank = two\n", path + ": [grid]: rank = 'two': not an integer"},
      {head + "method = lopa, sft\n", path + ": [grid]: method = 'sft': unknown method"},
      {"name = bad\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2, sst3\nmethod = pt\n", path + ": [grid]: task = 'sst3': unknown task"},
      {head + "method = lopa\nseed = 1, 1\n", path + ": [grid] seed = '1, 1': value '1' is listed twice"},
      {head + "method = lopa\nseed = 1,,2\n", path + ": [grid] seed = '1,,2': empty value in the list"},
      {head + "method = pt, idpg\nrank = 1, 4\n", path + ": [grid] rank is not used by any method of the sweep"},
      {"name = bad\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2\n", path + ": no 'method' in [grid] or [fixed]"},
      {"root = ROOT\n[grid]\nmodel = m\ntask = sst2\nmethod = pt\n", path + ": missing top-level key 'name'"},
      {head + "method = pt\nseed = 1\nseed = 2\n", path + ": key 'grid.seed' is given more than once"},
      {head + "method = pt\n[fixed]\nlr = fast\n", path + ": [fixed]: lr = 'fast': not a number"},
      {head + "method = pt\n[launch]\nranks-per-cell = 3\ntp = 2\n", path + ": tp = 2 does not divide [launch] ranks-per-cell = 3"},
      {head + "method = pt\n[launch]\nexecutor = pbs\n", path + ": [launch] executor = 'pbs': expected local or slurm"},
      {head + "method = pt\n[launch]\nmax-retries = -1\n", path + ": [launch] max-retries = '-1': must be >= 0"},
      {head + "method = pt\n[launch]\ncell-command = {lopa} train --config {cfg}\n",
       path + ": [launch] cell-command (placeholders: {launch,lopa,config,run_dir,cell_id,index,ranks,root,name,spec}): unknown placeholder {cfg}"},
      {head + "method = pt\nbogus-top = 1\n", path + ": unknown training key 'bogus-top' in [grid]"},
      {"name = bad\nroot = ROOT\nfoo = 1\n[grid]\nmodel = m\ntask = sst2\nmethod = pt\n", path + ": unknown top-level key 'foo'"},
  };
  for (const auto& c : cases) {
    const auto msg = error_of(c.text);
    EXPECT_EQ(msg.rfind(c.expected, 0), 0u) << "spec:\n" << c.text << "\nmessage: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(TrainKeys, SameKeysAsLoPaTrain) {
  // Every key a spec may set is an option of `lopa train`, and every training option of it is a key.
  std::string help;
  ASSERT_EQ(test::run(std::string(LOPA_BIN) + " train --help", &help), 0) << help;
  std::set<std::string> train_opts, ours;
  std::istringstream in(help);
  std::string line;
  while (std::getline(in, line)) {
    const auto at = line.find("--");
    if (at == std::string::npos || line.find_first_not_of(' ') != at) continue;
    const auto end = line.find_first_of(" \t", at);
    const auto name = line.substr(at + 2, end == std::string::npos ? std::string::npos : end - at - 2);
    if (name != "help" && name != "config" && name != "out") train_opts.insert(name);
  }
  for (const auto& k : train_keys()) ours.insert(k.name);
  EXPECT_EQ(ours, train_opts);
}


// Issue 18: Boost drops a section without keys, so an empty unknown section at the end was accepted
// while the same section with a key was rejected. Both are rejected now, naming the line, as are lines
// that are neither KEY = VALUE nor [section], and invalid UTF-8 (which broke plan.json later).
TEST_F(PlanTest, EmptyUnknownSectionsAndBadLinesAreRejectedWithTheirLine) {
  const std::string ok = "name = s\nroot = ROOT\n[grid]\nmodel = m\ntask = sst2\nmethod = pt\n";
  const auto path = dir + "/spec.ini";
  EXPECT_EQ(error_of(ok), "");
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {ok + "[extra]\n", path + ": unknown section [extra] at line 7 (expected [grid], [grid.METHOD], [fixed], [download], [launch])"},
      {ok + "[extra]\nseed = 1\n", path + ": unknown section [extra] at line 7 (expected [grid], [grid.METHOD], [fixed], [download], [launch])"},
      {ok + "[extra]   # nothing under it\n\n", path + ": unknown section [extra] at line 7 (expected [grid], [grid.METHOD], [fixed], [download], [launch])"},
      {"[gird]\n" + ok, path + ": unknown section [gird] at line 1 (expected [grid], [grid.METHOD], [fixed], [download], [launch])"},
      {ok + "[fixed]\n[lanch]\n", path + ": unknown section [lanch] at line 8 (expected [grid], [grid.METHOD], [fixed], [download], [launch])"},
      {ok + "[]\n", path + ": unknown section [] at line 7 (expected [grid], [grid.METHOD], [fixed], [download], [launch])"},
      {ok + "[launch\n", path + ": line 7: '[launch': a section header is [name]"},
      {ok + "epochs\n", path + ": line 7: 'epochs': expected KEY = VALUE or a [section] header"},
      {ok + "= 3\n", path + ": line 7: '= 3': expected KEY = VALUE or a [section] header"},
      {ok + "[fixed]\nlr = 0.\xff\n", path + ": line 8: invalid UTF-8 at byte 8"},
      {ok + "foo = 1\n", path + ": unknown training key 'foo' in [grid] at line 7 (lopa train --help lists the keys)"},
  };
  for (const auto& c : cases) EXPECT_EQ(error_of(c.text), c.expected) << "spec:\n" << c.text;
}

// Issue 18: model / encoder / data-dir paths that do not exist here are warned about (on stderr, each
// once, naming the spec, key and value) but planned: they may exist only on the cluster.
TEST_F(PlanTest, PathsThatDoNotExistHereAreWarnedAboutNotRejected) {
  std::filesystem::create_directories(dir + "/models/a");
  const auto path = spec_file("name = w\nroot = ROOT\n[grid]\nmodel = " + dir + "/models/a, " + dir +
                              "/missing-b\ntask = sst2\nmethod = lopa, pt\n[fixed]\nencoder = /nonexistent/enc\n"
                              "data-dir = " + dir + "\n");
  std::ostringstream err;
  const Plan p = make_plan(read_sweep_spec(path), &err);
  EXPECT_EQ(p.cells.size(), 4u);  // 2 models x 2 methods
  const std::string tail = "' does not exist here (fine if it exists where the cells run)";
  ASSERT_EQ(p.warnings.size(), 2u) << err.str();
  EXPECT_EQ(p.warnings[0], path + ": encoder = '/nonexistent/enc" + tail);
  EXPECT_EQ(p.warnings[1], path + ": model = '" + dir + "/missing-b" + tail);
  EXPECT_EQ(err.str(), "lopa sweep: warning: " + p.warnings[0] + "\nlopa sweep: warning: " + p.warnings[1] + "\n");
  std::ostringstream none;
  EXPECT_TRUE(make_plan(read_sweep_spec(spec_file("name = ok\nroot = ROOT\n[grid]\nmodel = " + dir +
                                                  "/models/a\ntask = sst2\nmethod = pt\n", "ok.ini")), &none)
                  .warnings.empty());
  EXPECT_EQ(none.str(), "");
  // lopa sweep plan says so on stderr and still lists the cells, exit 0.
  std::string out;
  EXPECT_EQ(test::run("{ " + std::string(LOPA_BIN) + " sweep plan --spec " + path + " 2>&1 >/dev/null; }", &out), 0) << out;
  EXPECT_EQ(out, err.str());
}

}  // namespace
}  // namespace lopa::cluster
