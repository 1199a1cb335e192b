// The GLUE holdout (issue 17): which training examples are held out, against positions computed by an
// independent implementation of splitmix64 (Python, in the comments); train and holdout partition the
// file in order; the splits a training run evaluates by default; errors for a holdout of other tasks.
#include <gtest/gtest.h>

#include <set>

#include "experiments/tasks/holdout.h"
#include "runtime/base/error.h"

using namespace lopa;

namespace {
const std::string kData = std::string(LOPA_SHARED_DIR) + "/data";
HoldoutRule share(double fraction) { return HoldoutRule{fraction, 0}; }  // no cap
}

// Python: sm(x) = splitmix64(x); sorted(sorted(range(n), key=lambda i: (sm(i), i))[:round(f * n)]).
TEST(Holdout, PositionsAreTheSmallestSplitmixHashes) {
  EXPECT_EQ(holdout_positions(10, share(0.3)), (std::vector<int64_t>{3, 5, 7}));
  EXPECT_EQ(holdout_positions(10, share(0.5)), (std::vector<int64_t>{1, 3, 4, 5, 7}));  // a superset of 0.3's
  EXPECT_EQ(holdout_positions(20, share(0.1)), (std::vector<int64_t>{10, 18}));
  EXPECT_EQ(holdout_positions(7, share(0.25)), (std::vector<int64_t>{3, 5}));  // round(1.75) = 2
  EXPECT_TRUE(holdout_positions(10, share(0)).empty());
  EXPECT_THROW(holdout_positions(10, share(1.0)), Error);
  // The cap keeps the smallest hashes: a subset of the uncapped positions.
  EXPECT_EQ(holdout_positions(10, HoldoutRule{0.3, 2}), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(holdout_positions(10, HoldoutRule{0.3, 5}), (std::vector<int64_t>{3, 5, 7}));
  EXPECT_THROW(holdout_positions(10, HoldoutRule{0.3, -1}), Error);
}

// The default rule (0.1, at most 1,000) on SST-2's 67,349 training rows: 1,000 held out, not 6,735.
TEST(Holdout, DefaultCapHoldsOutAThousandOfSst2) {
  const HoldoutRule rule;
  EXPECT_EQ(rule.max_count, 1000);
  const auto full = load_task("sst2", kData, "train");
  ASSERT_EQ(full.examples.size(), 67349u);
  const auto held = load_task_split("sst2", kData, "holdout", {}, rule);
  const auto train = load_task_split("sst2", kData, "train", {}, rule);
  ASSERT_EQ(held.examples.size(), 1000u);
  EXPECT_EQ(train.examples.size(), 67349u - 1000u);
  // Python (as above, k = min(round(0.1 n), 1000)): first positions 120 186 196 295 320 448, last 67000 67125 67167.
  const size_t first[] = {120, 186, 196, 295, 320, 448};
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(held.examples[i].id, full.examples[first[i]].id) << i;
  EXPECT_EQ(held.examples.back().id, full.examples[67167].id);
  // RTE (2,490 rows) is under the cap: its 10 % (249) as before.
  EXPECT_EQ(load_task_split("rte", kData, "holdout", {}, rule).examples.size(), 249u);
}

TEST(Holdout, SplitKeepsFileOrder) {
  std::vector<Example> ex(10);
  for (int i = 0; i < 10; ++i) ex[i].id = std::to_string(i);
  auto [train, held] = split_holdout(ex, share(0.3));
  ASSERT_EQ(held.size(), 3u);
  EXPECT_EQ(held[0].id, "3");
  EXPECT_EQ(held[1].id, "5");
  EXPECT_EQ(held[2].id, "7");
  std::vector<std::string> ids;
  for (const auto& e : train) ids.push_back(e.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"0", "1", "2", "4", "6", "8", "9"}));
}

TEST(Holdout, RteTrainAndHoldoutPartitionTheFile) {
  const auto full = load_task("rte", kData, "train");
  ASSERT_EQ(full.examples.size(), 2490u);  // the fixture's row count
  const auto train = load_task_split("rte", kData, "train", {}, share(0.1));
  const auto held = load_task_split("rte", kData, "holdout", {}, share(0.1));
  // Python: n = 2490, k = 249; first positions 10 18 21 41 48 68, last 2480 2481 2487.
  ASSERT_EQ(held.examples.size(), 249u);
  EXPECT_EQ(train.examples.size(), 2490u - 249u);
  EXPECT_EQ(held.split, "holdout");
  const size_t first[] = {10, 18, 21, 41, 48, 68};
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(held.examples[i].id, full.examples[first[i]].id) << i;
  EXPECT_EQ(held.examples.back().id, full.examples[2487].id);
  std::set<std::string> ids;
  for (const auto& e : train.examples) ids.insert(e.id);
  for (const auto& e : held.examples) EXPECT_FALSE(ids.count(e.id)) << e.id;
  EXPECT_EQ(train.examples[10].id, full.examples[11].id);  // position 10 is held out
  // holdout = 0 leaves train whole.
  EXPECT_EQ(load_task_split("rte", kData, "train", {}, share(0)).examples.size(), 2490u);
}

TEST(Holdout, DefaultEvaluationSplits) {
  using V = std::vector<std::string>;
  EXPECT_EQ(training_eval_splits("sst2", "", share(0.1)), (V{"holdout", "dev"}));
  EXPECT_EQ(training_eval_splits("mnli", "", share(0.1)), (V{"holdout", "dev_matched"}));
  EXPECT_EQ(training_eval_splits("rte", "", share(0)), (V{"dev"}));
  EXPECT_EQ(training_eval_splits("synth-facts", "", share(0.1)), (V{"dev", "test"}));
  EXPECT_EQ(training_eval_splits("story-names", "", share(0.1)), (V{"dev", "test"}));
  EXPECT_EQ(training_eval_splits("mbpp", "", share(0.1)), (V{"test"}));
  EXPECT_EQ(training_eval_splits("sst2", "dev, holdout", share(0.1)), (V{"dev", "holdout"}));
  EXPECT_THROW(training_eval_splits("sst2", "dev,dev", share(0.1)), Error);
  EXPECT_THROW(training_eval_splits("sst2", "dev,,test", share(0.1)), Error);
  EXPECT_THROW(load_task_split("synth-facts", "", "holdout", {}, share(0.1)), Error);
  EXPECT_THROW(load_task_split("rte", kData, "holdout", {}, share(0)), Error);
}
