// Trainer pieces against hand-derived values: schedules (HF definitions), data order, story-names
// determinism, training batches (labels only on target tokens), config validation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "experiments/eval/batching.h"
#include "experiments/tasks/in_domain_task.h"
#include "experiments/train/schedule.h"
#include "experiments/tasks/train_config.h"

using namespace lopa;

TEST(Schedule, HuggingFaceDefinitions) {
  EXPECT_DOUBLE_EQ(schedule_factor("constant", 0, 4, 100), 0.0);
  EXPECT_DOUBLE_EQ(schedule_factor("constant", 2, 4, 100), 0.5);
  EXPECT_DOUBLE_EQ(schedule_factor("constant", 50, 4, 100), 1.0);
  EXPECT_DOUBLE_EQ(schedule_factor("linear", 4, 4, 104), 1.0);
  EXPECT_DOUBLE_EQ(schedule_factor("linear", 54, 4, 104), 0.5);
  EXPECT_DOUBLE_EQ(schedule_factor("linear", 104, 4, 104), 0.0);
  EXPECT_NEAR(schedule_factor("cosine", 50, 0, 100), 0.5, 1e-12);
  EXPECT_NEAR(schedule_factor("cosine", 25, 0, 100), 0.5 * (1 + std::cos(M_PI / 4)), 1e-12);
  EXPECT_THROW(schedule_factor("exp", 1, 0, 10), std::exception);
}

TEST(DataOrder, PermutationDeterministicPerEpoch) {
  auto a = epoch_order(100, 7, 0), b = epoch_order(100, 7, 0), c = epoch_order(100, 7, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 100u);
}

TEST(StoryNames, DeterministicBalancedAndAnswerable) {
  auto d1 = load_story_names("dev"), d2 = load_story_names("dev");
  ASSERT_EQ(d1.examples.size(), 400u);
  int ones = 0;
  for (size_t i = 0; i < d1.examples.size(); ++i) {
    const auto& e = d1.examples[i];
    EXPECT_EQ(e.fields.at("sentence"), d2.examples[i].fields.at("sentence"));
    const auto right = e.fields.at(e.label == "0" ? "option0" : "option1");
    const auto wrong = e.fields.at(e.label == "0" ? "option1" : "option0");
    EXPECT_EQ(right, e.fields.at("name"));
    EXPECT_NE(right, wrong);
    EXPECT_NE(e.fields.at("sentence").find(right), std::string::npos);
    EXPECT_EQ(e.fields.at("sentence").find(wrong), std::string::npos);
    ones += e.label == "1";
  }
  EXPECT_GT(ones, 150);
  EXPECT_LT(ones, 250);
  EXPECT_EQ(load_story_names("train").examples.size(), 2000u);
  EXPECT_NE(load_story_names("train").examples[0].fields.at("sentence") + "x",
            load_story_names("test").examples[0].fields.at("sentence"));
  EXPECT_THROW(load_story_names("validation"), std::exception);
}

TEST(Batching, LabelsOnlyOnTargetTokens) {
  std::vector<TrainItem> items(2);
  items[0].prompt = {1, 10, 11};
  items[0].targets = {{20}, {21, 22}};
  items[0].gold = 1;
  items[1].prompt = {1, 12};
  items[1].targets = {{20}, {21, 22}};
  items[1].gold = 0;
  auto b = training_batch(items, {0, 1}, 0);
  EXPECT_TRUE(torch::equal(b.ids, torch::tensor({1, 10, 11, 21, 22, 1, 12, 20, 0, 0}, torch::kLong).view({2, 5})));
  EXPECT_TRUE(torch::equal(b.mask, torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, torch::kLong).view({2, 5})));
  EXPECT_TRUE(torch::equal(b.labels, torch::tensor({-100, -100, -100, 21, 22, -100, -100, 20, -100, -100}, torch::kLong).view({2, 5})));
  EXPECT_EQ(b.num_target_tokens, 3);
  auto s = scoring_batch(items, {0, 1}, 0);
  EXPECT_EQ(s.ids.size(0), 4);
  EXPECT_EQ(s.candidate, (std::vector<int64_t>{0, 1, 0, 1}));
}

TEST(TrainConfig, UnknownKeysAndBadValuesAreErrors) {
  std::map<std::string, std::string> kv = {{"model", "m"}, {"task", "sst2"}};
  EXPECT_NO_THROW(TrainConfig::from_map(kv));
  auto bad = kv;
  bad["lerning-rate"] = "1";
  EXPECT_THROW(TrainConfig::from_map(bad), std::exception);
  bad = kv;
  bad["method"] = "adapter";
  EXPECT_THROW(TrainConfig::from_map(bad), std::exception);
  bad = kv;
  bad["batch-size"] = "ten";
  EXPECT_THROW(TrainConfig::from_map(bad), std::exception);
  bad = kv;
  bad["batch-size"] = "10";
  bad["grad-accum"] = "3";
  EXPECT_THROW(TrainConfig::from_map(bad), std::exception);
}
