// The training-key table (experiments/train_keys.h) and its two consumers: `lopa train`'s TrainConfig
// (experiments/train_config.cpp) and the sweep planner's check of spec values (cluster/train_keys.h).
// The table's defaults are compared with TrainConfig's own member initialisers, the two consumers with
// each other over probe values, the task list with the trainer's task registry, and `lopa train`'s
// messages with the wording they had before the table was shared (written out by hand).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cluster/train_keys.h"
#include "experiments/tasks/in_domain_task.h"
#include "experiments/tasks/synthetic_task.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/train_config.h"
#include "runtime/base/error.h"

namespace lopa {
namespace {

using Map = std::map<std::string, std::string>;

// The keys without which from_map fails, and values that keep its cross-key checks quiet.
Map base_keys() { return {{"model", "m"}, {"task", "sst2"}, {"max-steps", "1"}, {"prompt-init-text", "x"}}; }

// from_map's message for these keys on top of base_keys() ("" when it accepts them).
std::string train_error(const Map& extra) {
  Map kv = base_keys();
  for (const auto& [k, v] : extra) kv[k] = v;
  try {
    TrainConfig::from_map(kv);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool planner_accepts(const TrainKey& k, const std::string& v) {
  try {
    cluster::check_train_value(k, v, "spec.ini: [fixed]");
  } catch (const Error&) {
    return false;
  }
  return true;
}

TEST(TrainKeys, DefaultsAreTrainConfigsMemberDefaults) {
  // TrainConfig's initialisers (train_config.h) are written independently of the table's defaults.
  const TrainConfig d;
  const TrainConfig c = TrainConfig::from_map({{"model", "m"}, {"task", "sst2"}});
  EXPECT_EQ(c.model, "m");
  EXPECT_EQ(c.task, "sst2");
  EXPECT_EQ(c.encoder, d.encoder);
  EXPECT_EQ(c.data_dir, d.data_dir);
  EXPECT_EQ(c.method, d.method);
  EXPECT_EQ(c.num_virtual_tokens, d.num_virtual_tokens);
  EXPECT_EQ(c.rank, d.rank);
  EXPECT_DOUBLE_EQ(c.lr, d.lr);
  EXPECT_EQ(c.epochs, d.epochs);
  EXPECT_EQ(c.max_steps, d.max_steps);
  EXPECT_EQ(c.batch_size, d.batch_size);
  EXPECT_EQ(c.grad_accum, d.grad_accum);
  EXPECT_EQ(c.max_length, d.max_length);
  EXPECT_EQ(c.seed, d.seed);
  EXPECT_EQ(c.tp, d.tp);
  EXPECT_EQ(c.dtype, d.dtype);
  EXPECT_EQ(c.autocast, d.autocast);
  EXPECT_EQ(c.eval_every, d.eval_every);
  EXPECT_EQ(c.save_every, d.save_every);
  EXPECT_EQ(c.device, d.device);
  EXPECT_EQ(c.schedule, d.schedule);
  EXPECT_EQ(c.warmup_steps, d.warmup_steps);
  EXPECT_DOUBLE_EQ(c.weight_decay, d.weight_decay);
  EXPECT_DOUBLE_EQ(c.max_grad_norm, d.max_grad_norm);
  EXPECT_EQ(c.eval_batch_size, d.eval_batch_size);
  EXPECT_EQ(c.max_train_examples, d.max_train_examples);
  EXPECT_EQ(c.max_eval_examples, d.max_eval_examples);
  EXPECT_EQ(c.max_new_tokens, d.max_new_tokens);
  EXPECT_EQ(c.eval_split, d.eval_split);
  EXPECT_DOUBLE_EQ(c.holdout, d.holdout);
  EXPECT_EQ(c.holdout_max, d.holdout_max);
  EXPECT_EQ(c.save_initial, d.save_initial);
  EXPECT_EQ(c.lopa_combine, d.lopa_combine);
  EXPECT_EQ(c.encoder_pooling, d.encoder_pooling);
  EXPECT_EQ(c.encoder_max_length, d.encoder_max_length);
  EXPECT_EQ(c.head_dim, d.head_dim);
  EXPECT_DOUBLE_EQ(c.prompt_dropout, d.prompt_dropout);
  EXPECT_EQ(c.prompt_init, d.prompt_init);
  EXPECT_EQ(c.prompt_init_text, d.prompt_init_text);
  EXPECT_DOUBLE_EQ(c.lora_alpha, d.lora_alpha);
  EXPECT_DOUBLE_EQ(c.lora_dropout, d.lora_dropout);
  EXPECT_EQ(c.lora_targets, d.lora_targets);
  EXPECT_EQ(c.prefix_projection, d.prefix_projection);
  EXPECT_EQ(c.prefix_hidden, d.prefix_hidden);
  EXPECT_EQ(c.prompt_template, d.prompt_template);
  EXPECT_EQ(c.target_template, d.target_template);
  EXPECT_EQ(c.verbalizers, d.verbalizers);
  EXPECT_EQ(c.skip_bad_rows, d.skip_bad_rows);
  EXPECT_EQ(c.train_encoder, d.train_encoder);
  EXPECT_EQ(c.encoder_lr, d.encoder_lr);
  // 50 keys above (model and task given): a key added to the table needs a line here.
  EXPECT_EQ(train_keys().size(), 50u);
}

TEST(TrainKeys, EveryKeyAndDefaultIsAcceptedByBothConsumers) {
  std::set<std::string> names;
  for (const auto& k : train_keys()) {
    EXPECT_TRUE(names.insert(k.name).second) << k.name << " is in the table twice";
    EXPECT_EQ(find_train_key(k.name), &k);
    EXPECT_STRNE(k.help, "") << k.name;
    // Given explicitly, its default passes lopa train (but model and task, required, have none); a
    // non-empty default passes the planner.
    if (std::string(k.name) != "model" && std::string(k.name) != "task") {
      EXPECT_EQ(train_error({{k.name, k.default_value}}), "") << k.name;
    }
    if (*k.default_value) {
      EXPECT_TRUE(planner_accepts(k, k.default_value)) << k.name << " = " << k.default_value;
    }
    if (k.type == KeyType::Choice) {
      for (const auto& c : cluster::split_list(k.choices)) {
        if (std::string(k.name) != "task") {
          EXPECT_EQ(train_error({{k.name, c}}), "") << k.name << " = " << c;
        }
        EXPECT_TRUE(planner_accepts(k, c)) << k.name << " = " << c;
      }
    }
    // Methods named as users of the key are methods.
    const auto& methods = cluster::method_names();
    if (*k.methods) {
      for (const auto& m : cluster::split_list(k.methods))
        EXPECT_NE(std::find(methods.begin(), methods.end(), m), methods.end()) << k.name << ": " << m;
    }
  }
  // to_ini writes every key, in table order.
  const auto ini = TrainConfig::to_ini({});
  size_t at = 0;
  for (const auto& k : train_keys()) {
    const auto p = ini.find("\n" + std::string(k.name) + " = ", at);
    ASSERT_NE(p, std::string::npos) << k.name;
    at = p + 1;
  }
}

TEST(TrainKeys, UnknownKeysAreRejectedByBoth) {
  EXPECT_EQ(find_train_key("no-such-key"), nullptr);
  EXPECT_EQ(train_error({{"no-such-key", "3"}}), "unknown training key 'no-such-key' (see lopa train --help)");
}

TEST(TrainKeys, PlannerAcceptsExactlyTheValuesLopaTrainAccepts) {
  // Empty values are left out: lopa train reads them as "unset", a spec may not give one.
  const std::vector<std::string> probes = {"-1",  "0",   "1",   "7",   "8",    "255", "0.5",  "0.999", "1.5", "-0.5",
                                           "1e3", "abc", "true", "false", "on", "off", "yes",  "no",    "inf", "nan",
                                           " 3",  "3 ",  "+2",  "0x10", "cpu",  "sst2", "lopa", "text"};
  int compared = 0;
  for (const auto& k : train_keys()) {
    // Task names are checked by the trainer's task registry at run time, not by from_map (TaskChoices below).
    if (std::string(k.name) == "task") continue;
    for (const auto& v : probes) {
      Map extra = {{k.name, v}};
      long long n = 0;
      // grad-accum must divide batch-size: make it so, to compare the key's own rule.
      if (std::string(k.name) == "grad-accum" && parse_key_int(v, n) && n > 0) extra["batch-size"] = v;
      // train-encoder needs an encoder: give one, to compare the key's own rule.
      if (std::string(k.name) == "train-encoder") extra["encoder"] = "enc";
      const auto err = train_error(extra);
      EXPECT_EQ(err.empty(), planner_accepts(k, v)) << k.name << " = '" << v << "': lopa train says '" << err << "'";
      ++compared;
    }
  }
  EXPECT_EQ(compared, (int(train_keys().size()) - 1) * int(probes.size()));  // every key but task
}

TEST(TrainKeys, TaskChoicesAreTheTrainersTasks) {
  // The generated tasks are in the task table like the benchmarks (no special case in the trainer).
  std::set<std::string> trainer(task_names().begin(), task_names().end());
  EXPECT_TRUE(trainer.count(kStoryNamesTask) && trainer.count(kSynthFactsTask));
  const auto table = cluster::task_names();
  EXPECT_EQ(std::set<std::string>(table.begin(), table.end()), trainer);
  for (const auto& t : table) EXPECT_NO_THROW(task_info(t)) << t;
}

TEST(TrainKeys, LopaTrainMessagesKeepTheirWording) {
  // The messages of `lopa train` for bad values, as train_config.cpp worded them before it read the table.
  EXPECT_EQ(train_error({{"rank", "0"}}), "--rank: must be >= 1, got 0");
  EXPECT_EQ(train_error({{"rank", "two"}}), "--rank: 'two' is not an integer");
  EXPECT_EQ(train_error({{"max-length", "4"}}), "--max-length: must be >= 8, got 4");
  EXPECT_EQ(train_error({{"lr", "fast"}}), "--lr: 'fast' is not a number");
  EXPECT_EQ(train_error({{"weight-decay", "-0.5"}}), "--weight-decay: must be >= 0, got -0.5");
  EXPECT_EQ(train_error({{"lora-dropout", "1"}}), "--lora-dropout: must be < 1");
  EXPECT_EQ(train_error({{"method", "adapter"}}),
            "--method: unknown value 'adapter' (expected one of fft, idpg, lopa, lora, prefix, pt)");
  EXPECT_EQ(train_error({{"schedule", "exponential"}}),
            "--schedule: unknown value 'exponential' (expected one of constant, cosine, linear)");
  EXPECT_EQ(train_error({{"prefix-projection", "maybe"}}), "--prefix-projection: 'maybe' is not a boolean (true/false)");
  EXPECT_EQ(train_error({{"model", ""}}), "--model: required (a Hugging Face checkpoint directory)");
  EXPECT_EQ(train_error({{"task", ""}}), "--task: required");
  EXPECT_EQ(train_error({{"epochs", "0"}, {"max-steps", "0"}}), "--epochs/--max-steps: one of them must be positive");
  EXPECT_EQ(train_error({{"grad-accum", "3"}}), "--batch-size 8 is not a multiple of --grad-accum 3");
  EXPECT_EQ(train_error({{"prompt-init", "text"}, {"prompt-init-text", ""}}), "--prompt-init text needs --prompt-init-text");
  // Several bad keys: the first in table order is reported (rank before lr before max-length).
  EXPECT_EQ(train_error({{"max-length", "4"}, {"lr", "x"}, {"rank", "0"}}), "--rank: must be >= 1, got 0");
  // Flags read on, off and empty as the trainer always did.
  EXPECT_TRUE(TrainConfig::from_map({{"model", "m"}, {"task", "t"}, {"skip-bad-rows", "on"}}).skip_bad_rows);
  EXPECT_FALSE(TrainConfig::from_map({{"model", "m"}, {"task", "t"}, {"skip-bad-rows", ""}}).skip_bad_rows);
}

TEST(TrainKeys, ANulByteInANumberIsAnErrorOfLopaTrain) {
  // strtod/strtoll stop at the NUL: the value used to pass as 0, then std::stod threw std::invalid_argument
  // (found by the fuzz suite, seed 18008 case 2320).
  for (const char* key : {"lr", "rank", "weight-decay", "max-steps"}) {
    const std::string v("\0" "3", 2);
    EXPECT_NE(train_error({{key, v}}), "") << key;  // a lopa::Error (any other exception fails the test)
    EXPECT_FALSE(planner_accepts(*find_train_key(key), v)) << key;
  }
}

// A checkpoint written before a key existed resumes under a binary that has the key, when the key's
// absence means what the run is now asked to do; any other difference, or a recorded key this binary
// lacks, is named.
TEST(TrainKeys, ResumeComparesAnAbsentKeyAsTheBehaviourBeforeIt) {
  const std::map<std::string, std::string> now = {{"model", "m"}, {"task", "sst2"}, {"lr", "0.01"}};
  auto recorded = now;  // every key of that day's table
  for (const auto& k : train_config_keys())
    if (!recorded.count(k.name)) recorded[k.name] = k.default_value;
  EXPECT_EQ(TrainConfig::resume_difference(recorded, now), "");
  recorded.erase("save-initial");  // came without changing anything: absent = its default
  EXPECT_EQ(TrainConfig::resume_difference(recorded, now), "");
  recorded.erase("holdout-max");  // came with a cap on the holdout: absent = no cap
  EXPECT_EQ(TrainConfig::resume_difference(recorded, now), "'holdout-max' was '0', now '1000'");
  auto uncapped = now;
  uncapped["holdout-max"] = "0";
  EXPECT_EQ(TrainConfig::resume_difference(recorded, uncapped), "");
  auto other_lr = uncapped;
  other_lr["lr"] = "0.003";
  EXPECT_EQ(TrainConfig::resume_difference(recorded, other_lr), "'lr' was '0.01', now '0.003'");
  recorded["retired-key"] = "1";
  EXPECT_EQ(TrainConfig::resume_difference(recorded, uncapped), "'retired-key' is recorded but is no key of this lopa");
}

// A config.ini written before holdout-max existed reads as the uncapped holdout that run used, so that
// `lopa eval --run` and `--adapter` rebuild its splits.
TEST(TrainKeys, AnOlderConfigIniReadsAsWhatItsRunDid) {
  const std::string path = testing::TempDir() + "lopa-old-config.ini";
  {
    std::ofstream f(path);
    f << "# lopa train: every resolved key of this run\nmodel = m\ntask = sst2\nholdout = 0.1\nlr = 0.01\n";
  }
  const auto kv = TrainConfig::read_ini(path);
  EXPECT_EQ(kv.at("holdout-max"), "0");
  EXPECT_EQ(kv.at("save-initial"), "false");  // a default like any other
  EXPECT_EQ(kv.at("lr"), "0.01");
  EXPECT_EQ(TrainConfig::from_map(kv).holdout_max, 0);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace lopa
