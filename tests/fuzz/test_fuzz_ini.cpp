// Fuzzing the INI inputs: sweep specs (read_sweep_spec, then make_plan) and the training config of
// one cell as `lopa train --config FILE` reads it (apps/options' parse_options against the training
// keys, then TrainConfig::from_map) and as `lopa eval` reads a run's config.ini (TrainConfig::read_ini).
// Mutations: line edits (delete, duplicate, swap, blank, glue, cut), bit flips, truncation, invalid
// UTF-8, odd numbers (NaN, inf, huge, negative), unknown or empty sections, '=' dropped, long values.
// Seeds and case counts are in the test names and printed.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "apps/options.h"
#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "experiments/tasks/train_config.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lopa;
using namespace lopa::fuzz;

namespace {

const char* kSpec = R"(# a sweep spec of every section
name = fuzz-sweep
root = ROOT

[grid]
model = ../shared/models/stories260K
task = sst2, rte
method = lopa, pt, lora
num-virtual-tokens = 5, 10
rank = 1, 2
seed = 0, 1

[fixed]
data-dir = ../shared/data
lr = 0.03
max-steps = 20
batch-size = 8
max-length = 64

[launch]
executor = local
ranks-per-cell = 2
tp = 2
jobs = 1
max-retries = 1
require-run-log = true
)";

const char* kTrainIni = R"(model = ../shared/models/stories260K
task = sst2
data-dir = ../shared/data
method = lopa
num-virtual-tokens = 5
rank = 2
lr = 0.03
epochs = 1
max-steps = 20
batch-size = 8
grad-accum = 2
max-length = 64
seed = 3
schedule = cosine
warmup-steps = 2
lopa-combine = mul
prompt-dropout = 0.1
skip-bad-rows = false
)";

void mutate_ini(std::string& s, Mutator& m) {
  switch (m.below(10)) {
    case 0: case 1: case 2: m.edit_lines(s); break;
    case 3: m.flip_bits(s); break;
    case 4: m.truncate(s); break;
    case 5: m.insert_invalid_utf8(s); break;
    case 6: if (!m.replace_number(s)) m.flip_bits(s); break;
    case 7: {  // a section header, known or not, empty or followed by a key, anywhere
      static const char* sec[] = {"[grid]", "[fixed]", "[launch]", "[gird]", "[]", "[ grid ]", "[launch", "[x.y]"};
      std::string h = std::string("\n") + sec[m.below(8)] + "\n";
      if (m.chance(0.5)) h += "seed = 1\n";
      m.insert(s, h, "section");
      break;
    }
    case 8: {  // a value becomes NaN / inf / huge / empty
      const size_t eq = s.find('=', m.below(s.size() + 1));
      if (eq == std::string::npos) { m.flip_bits(s); break; }
      const size_t e = s.find('\n', eq);
      static const char* v[] = {" nan", " inf", " -inf", " 1e999", " -1", " ", " 99999999999999999999", " 0",
                                " 1,1", " ,", " true", " \"x\""};
      const std::string val = v[m.below(12)];
      s.replace(eq + 1, (e == std::string::npos ? s.size() : e) - eq - 1, val);
      m.note += "value@" + std::to_string(eq) + "=" + val + " ";
      break;
    }
    default: {
      const size_t eq = s.find('=', m.below(s.size() + 1));
      if (eq == std::string::npos) { m.insert(s, std::string(100000, 'v'), "long"); break; }
      if (m.chance(0.5)) s.erase(eq, 1), m.note += "drop=@" + std::to_string(eq) + " ";
      else s.insert(eq + 1, std::string(100000, 'v')), m.note += "longvalue@" + std::to_string(eq) + " ";
      break;
    }
  }
}

}  // namespace

TEST(FuzzSweepSpec, Seed18007Cases400) {
  const uint64_t seed = 18007;
  const std::string dir = temp_dir("spec");
  const std::string path = dir + "/spec.ini";
  std::string base = kSpec;
  base.replace(base.find("ROOT"), 4, dir + "/runs");
  // As `lopa sweep plan --json` does: read, expand, and write the plan as JSON (which throws on bytes
  // that are not UTF-8).
  const auto plan = [](const std::string& p) { (void)cluster::plan_json(cluster::make_plan(cluster::read_sweep_spec(p))); };
  write_bytes(path, base);
  ASSERT_NO_THROW(plan(path));
  Tally t;
  for (int i = 0; i < 400 * case_scale(); ++i) {
    Mutator m(seed * 1000003u + (uint64_t)i);
    std::string s = base;
    const int n = 1 + (int)m.below(3);
    for (int k = 0; k < n; ++k) mutate_ini(s, m);
    run_case(t, "sweep spec seed=" + std::to_string(seed) + " case=" + std::to_string(i) + ": " + m.note, path, s, plan);
  }
  report("sweep spec", seed, t);
  EXPECT_GT(t.rejected, 0);
  EXPECT_GT(t.accepted, 0);
  std::filesystem::remove_all(dir);
}

// lopa train's option table: --out and every training key with its default, as cmd_train.cpp.
boost::program_options::options_description train_options() {
  namespace po = boost::program_options;
  po::options_description desc("train");
  desc.add_options()("out", po::value<std::string>(), "");
  for (const auto& k : train_config_keys())
    desc.add_options()(k.name, po::value<std::string>()->default_value(k.default_value), k.help);
  return desc;
}

TEST(FuzzTrainIni, Seed18008Cases400) {
  const auto desc = train_options();
  const auto train_config = [&](const std::string& p) {
    auto parsed = app::parse_options("train", "", desc, {"--config", p, "--out", "/nonexistent/run"});
    std::map<std::string, std::string> kv;
    for (const auto& k : train_config_keys()) kv[k.name] = parsed.vm[k.name].as<std::string>();
    (void)TrainConfig::from_map(kv);
  };
  const auto eval_config = [](const std::string& p) {
    auto kv = TrainConfig::read_ini(p);
    for (const auto& k : train_config_keys())
      if (!kv.count(k.name)) kv[k.name] = k.default_value;
    (void)TrainConfig::from_map(kv);
  };
  const uint64_t seed = 18008;
  const std::string dir = temp_dir("trainini");
  const std::string path = dir + "/config.ini";
  write_bytes(path, kTrainIni);
  ASSERT_NO_THROW(train_config(path));
  ASSERT_NO_THROW(eval_config(path));
  // TrainConfig::from_map checks values without knowing their file: its messages name the key
  // ("--lr: ..."); everything read from the file itself must name the file.
  int key_only = 0;
  const auto names = [&](const std::string& msg) {
    if (names_file(msg, path)) return true;
    if (msg.rfind("--", 0) == 0 || msg.rfind("unknown training key '", 0) == 0) return ++key_only, true;
    return false;
  };
  Tally t;
  for (int i = 0; i < 400 * case_scale(); ++i) {
    Mutator m(seed * 1000003u + (uint64_t)i);
    std::string s = kTrainIni;
    const int n = 1 + (int)m.below(3);
    for (int k = 0; k < n; ++k) mutate_ini(s, m);
    const bool eval = m.chance(0.3);
    run_case(t,
             std::string("train ini (") + (eval ? "read_ini" : "--config") + ") seed=" + std::to_string(seed) +
                 " case=" + std::to_string(i) + ": " + m.note,
             path, s, eval ? std::function<void(const std::string&)>(eval_config) : train_config, names);
  }
  report("train ini", seed, t);
  std::printf("[fuzz] train ini: %d rejections name the key only (TrainConfig::from_map's value checks)\n", key_only);
  EXPECT_GT(t.rejected, 0);
  EXPECT_GT(t.accepted, 0);
  std::filesystem::remove_all(dir);
}

// Issue 18: an empty --config file ended in "--model: required", which does not name it. Every mistake
// of the file itself names the file and its line.
TEST(TrainConfigFile, MistakesNameTheFileAndLine) {
  const auto desc = train_options();
  const std::string dir = temp_dir("config-errors");
  const std::string path = dir + "/cell.ini";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", path + ": empty config file (no KEY = VALUE line)"},
      {"# only a comment\n\n   \n", path + ": empty config file (no KEY = VALUE line)"},
      {"model = m\nbogus = 1\n", path + ":2: unknown key 'bogus' (see lopa train --help)"},
      {"model = m\nlr\n", path + ":2: 'lr': expected KEY = VALUE"},
      {"lr = 1\n\nlr = 2\n", path + ":3: key 'lr' is given twice (first on line 1)"},
      {"[train]\nlr = 1\n", path + ":2: unknown key 'train.lr' (see lopa train --help)"},
      {"lr = 1\n[fixed\n", path + ":2: '[fixed': a section header is [name]"},
      {std::string("lr = 1\nseed = ") + '\0' + "\n", path + ":2: NUL byte in the line"},
  };
  for (const auto& [text, expected] : cases) {
    write_bytes(path, text);
    try {
      app::parse_options("train", "", desc, {"--config", path});
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), expected);
    }
  }
  // A valid file still parses, and the command line wins over it.
  write_bytes(path, "model = m  # a comment\nlr = 0.5\n");
  auto p = app::parse_options("train", "", desc, {"--config", path, "--lr", "0.25"});
  EXPECT_EQ(p.vm["model"].as<std::string>(), "m");
  EXPECT_EQ(p.vm["lr"].as<std::string>(), "0.25");
  std::filesystem::remove_all(dir);
}

// A bad value in a --config file names the file and its line (lopa train checks the file before the
// keys are resolved), in the words lopa train uses for the same value on the command line.
TEST(TrainConfigFile, BadValuesNameTheFileAndLine) {
  const std::string dir = temp_dir("config-values");
  const std::string path = dir + "/cell.ini";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"model = m\nlr = abc\n", path + ":2: --lr: 'abc' is not a number"},
      {"model = m\n\n# x\nrank = 0   # r\n", path + ":4: --rank: must be >= 1, got 0"},
      {"method = lopa\nschedule = exponential\n",
       path + ":2: --schedule: unknown value 'exponential' (expected one of constant, cosine, linear)"},
      {"prompt-dropout = 1\n", path + ":1: --prompt-dropout: must be < 1"},
      {"train-encoder = maybe\n", path + ":1: --train-encoder: 'maybe' is not a boolean (true/false)"},
  };
  for (const auto& [text, expected] : cases) {
    write_bytes(path, text);
    try {
      TrainConfig::check_config_file(path);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), expected);
    }
  }
  // Good values, unknown keys (the option parser's business) and sections pass this check.
  write_bytes(path, "model = m\nlr = 1e-3\ntask = nonsense\n[x]\nbogus = 1\n");
  EXPECT_NO_THROW(TrainConfig::check_config_file(path));
  std::filesystem::remove_all(dir);
}
