// What `lopa demo` writes before its sweep runs (experiments/demo.h): the synth-facts JSONL files and the
// two sweep specs, read back through the sweep planner. Expected cells and keys are derived by hand from
// the demo's documented defaults (README: PT/IDPG/LoPA at lr 0.03, LoRA at 0.01; m 4, r 2, 400 steps).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "experiments/demo/demo.h"
#include "experiments/tasks/synthetic_task.h"
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

const cluster::Cell* find_cell(const cluster::Plan& p, const std::string& method, const std::string& seed) {
  for (const auto& c : p.cells)
    if (c.keys.at("method") == method && c.keys.at("seed") == seed) return &c;
  return nullptr;
}

TEST_F(DemoFiles, DefaultSpecsPlanThePromptAndLoraSweeps) {
  DemoSweepOptions o;
  o.out = dir + "/demo";
  o.fm = "/fm/demo";
  const auto specs = write_demo_specs(o);
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0], dir + "/demo/sweep-prompts.ini");
  EXPECT_EQ(specs[1], dir + "/demo/sweep-lora.ini");

  const auto prompts = cluster::make_plan(cluster::read_sweep_spec(specs[0]));
  EXPECT_EQ(prompts.spec.name, "demo-prompts");
  EXPECT_EQ(prompts.spec.root, dir + "/demo/runs/prompts");
  EXPECT_EQ(prompts.spec.launch.executor, "local");
  EXPECT_EQ(prompts.spec.launch.ranks_per_cell, 2);
  EXPECT_EQ(prompts.spec.launch.report_command, "");
  ASSERT_EQ(prompts.cells.size(), 6u);  // pt, idpg, lopa x seeds 0, 1
  // 400 steps: evaluation every 100, warmup 40; tp from [launch].
  const Keys common = {{"model", "/fm/demo"}, {"task", "synth-facts"}, {"max-steps", "400"}, {"eval-every", "100"},
                       {"batch-size", "16"},  {"max-length", "32"},    {"eval-batch-size", "64"}, {"schedule", "linear"},
                       {"warmup-steps", "40"}, {"device", "cpu"},      {"tp", "2"}};
  Keys lopa = common;
  lopa.insert({{"method", "lopa"}, {"seed", "1"}, {"lr", "0.03"}, {"rank", "2"}, {"num-virtual-tokens", "4"},
               {"prompt-init", "vocab"}});
  const auto* c = find_cell(prompts, "lopa", "1");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->keys, lopa);
  Keys pt = lopa;  // PT has no rank
  pt.erase("rank");
  pt["method"] = "pt";
  pt["seed"] = "0";
  ASSERT_NE(find_cell(prompts, "pt", "0"), nullptr);
  EXPECT_EQ(find_cell(prompts, "pt", "0")->keys, pt);
  Keys idpg = pt;  // IDPG has neither rank nor Z_S's initialisation
  idpg.erase("prompt-init");
  idpg["method"] = "idpg";
  ASSERT_NE(find_cell(prompts, "idpg", "0"), nullptr);
  EXPECT_EQ(find_cell(prompts, "idpg", "0")->keys, idpg);

  const auto lora_plan = cluster::make_plan(cluster::read_sweep_spec(specs[1]));
  EXPECT_EQ(lora_plan.spec.root, dir + "/demo/runs/lora");
  ASSERT_EQ(lora_plan.cells.size(), 2u);
  Keys lora = common;
  lora.insert({{"method", "lora"}, {"seed", "0"}, {"lr", "0.01"}, {"rank", "2"}});
  ASSERT_NE(find_cell(lora_plan, "lora", "0"), nullptr);
  EXPECT_EQ(find_cell(lora_plan, "lora", "0")->keys, lora);
}

TEST_F(DemoFiles, ShortRunsAndMethodSubsets) {
  DemoSweepOptions o;
  o.out = dir;
  o.fm = "/fm";
  o.methods = " lora ,";
  o.seeds = "3";
  o.steps = 3;  // steps / 4 and steps / 10 round to 0: both become 1
  o.ranks = 1;
  o.tp = 1;
  const auto specs = write_demo_specs(o);
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0], dir + "/sweep-lora.ini");
  const auto plan = cluster::make_plan(cluster::read_sweep_spec(specs[0]));
  ASSERT_EQ(plan.cells.size(), 1u);
  EXPECT_EQ(plan.cells[0].keys.at("eval-every"), "1");
  EXPECT_EQ(plan.cells[0].keys.at("warmup-steps"), "1");
  EXPECT_EQ(plan.cells[0].keys.at("seed"), "3");
  EXPECT_EQ(plan.cells[0].keys.at("tp"), "1");

  // A group gets only the keys its methods read: PT no rank, IDPG neither rank nor prompt-init.
  o.eval_every = 2;
  o.methods = "pt";
  const auto pt = cluster::make_plan(cluster::read_sweep_spec(write_demo_specs(o).at(0)));
  EXPECT_EQ(pt.spec.name, "demo-prompts");
  EXPECT_EQ(pt.cells.at(0).keys.at("eval-every"), "2");
  EXPECT_EQ(pt.cells.at(0).keys.count("rank"), 0u);
  EXPECT_EQ(pt.cells.at(0).keys.at("prompt-init"), "vocab");
  o.methods = "idpg";
  const auto idpg = cluster::make_plan(cluster::read_sweep_spec(write_demo_specs(o).at(0)));
  EXPECT_EQ(idpg.cells.at(0).keys.count("rank") + idpg.cells.at(0).keys.count("prompt-init"), 0u);
  EXPECT_EQ(idpg.cells.at(0).keys.at("num-virtual-tokens"), "4");

  o.methods = " , ";
  try {
    write_demo_specs(o);
    FAIL() << "no methods accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "lopa demo: --methods is empty");
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
