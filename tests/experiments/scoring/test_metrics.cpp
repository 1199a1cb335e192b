// Metrics against hand-computed values: accuracy, F1 of the positive class, unbiased pass@k; the
// prediction-line format and in-memory GLUE scoring.
#include <gtest/gtest.h>

#include "experiments/scoring/metrics.h"
#include "experiments/scoring/scorer.h"
#include "experiments/tasks/templates.h"
#include "runtime/base/error.h"

using namespace lopa;

TEST(Metrics, AccuracyByHand) {
  // 3 of 4 right.
  EXPECT_DOUBLE_EQ(accuracy({"1", "0", "1", "1"}, {"1", "0", "0", "1"}), 0.75);
  EXPECT_DOUBLE_EQ(accuracy({"a"}, {"b"}), 0.0);
  EXPECT_THROW(accuracy({"1"}, {"1", "0"}), Error);
  EXPECT_THROW(accuracy({}, {}), Error);
}

TEST(Metrics, F1ByHand) {
  // pred: 1 1 0 1 0 1 ; gold: 1 0 0 1 1 1  -> tp = 3, fp = 1, fn = 1 -> P = R = 3/4, F1 = 0.75.
  std::vector<std::string> p = {"1", "1", "0", "1", "0", "1"}, g = {"1", "0", "0", "1", "1", "1"};
  EXPECT_DOUBLE_EQ(f1_score(p, g, "1"), 0.75);
  // Positive class "0": tp = 1, fp = 1, fn = 1 -> 2/4 = 0.5.
  EXPECT_DOUBLE_EQ(f1_score(p, g, "0"), 0.5);
  // tp = 1, fp = 0, fn = 2: P = 1, R = 1/3 -> F1 = 2 * (1/3) / (4/3) = 0.5.
  EXPECT_DOUBLE_EQ(f1_score({"1", "0", "0"}, {"1", "1", "1"}, "1"), 0.5);
  // All-positive predictions on MRPC dev (279 positives of 408): 2*279 / (2*279 + 129).
  std::vector<std::string> ap(408, "1"), ag(408, "0");
  for (int i = 0; i < 279; ++i) ag[i] = "1";
  EXPECT_NEAR(f1_score(ap, ag, "1"), 0.8122270742358079, 1e-12);
  EXPECT_DOUBLE_EQ(f1_score({"0"}, {"0"}, "1"), 0.0);
}

TEST(Metrics, PassAtKByHand) {
  // Values from 1 - C(n-c, k) / C(n, k) with exact binomials (Python fractions).
  EXPECT_NEAR(pass_at_k(5, 2, 1), 0.4, 1e-12);
  EXPECT_NEAR(pass_at_k(5, 2, 2), 0.7, 1e-12);
  EXPECT_NEAR(pass_at_k(10, 0, 1), 0.0, 1e-12);
  EXPECT_NEAR(pass_at_k(3, 3, 2), 1.0, 1e-12);
  EXPECT_NEAR(pass_at_k(200, 5, 100), 0.9703083947657067, 1e-12);
  EXPECT_NEAR(pass_at_k(20, 3, 10), 0.8947368421052632, 1e-12);
  EXPECT_NEAR(pass_at_k(4, 1, 4), 1.0, 1e-12);
  EXPECT_THROW(pass_at_k(3, 1, 4), Error);
  EXPECT_THROW(pass_at_k(3, 4, 1), Error);
}

TEST(Scorer, PredictionLinesRoundTripAndGlueScores) {
  EXPECT_EQ(prediction_line("sst2", "12", "1"), "{\"idx\":12,\"prediction\":\"1\"}");
  EXPECT_EQ(prediction_line("mbpp", "MBPP/3", "  return 1"), "{\"completion\":\"  return 1\",\"task_id\":\"MBPP/3\"}");
  EXPECT_EQ(prediction_line("cruxeval-o", "sample_3", "'a'"), "{\"id\":\"sample_3\",\"prediction\":\"'a'\"}");
  EXPECT_EQ(stop_sequences("cruxeval-i"), std::vector<std::string>{"[/ANSWER]"});
  EXPECT_TRUE(stop_sequences("sst2").empty());
  // In-memory GLUE scoring: 3 examples, 2 right, one missing prediction counts as wrong.
  std::vector<Example> ex(3);
  const char* gold[] = {"1", "0", "1"};
  for (int i = 0; i < 3; ++i) {
    ex[i].id = std::to_string(i);
    ex[i].label = gold[i];
    ex[i].label_index = gold[i][0] - '0';
  }
  Metrics m = score_predictions("mrpc", ex, {{"0", "1", 1}, {"1", "0", 2}});
  EXPECT_NEAR(m["accuracy"], 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m["f1"], 2.0 / 3.0, 1e-12);  // tp 1, fp 0, fn 1
  EXPECT_EQ(m["missing"], 1);
  EXPECT_THROW(score_predictions("mrpc", ex, {{"7", "1", 1}}), Error);
  EXPECT_THROW(score_predictions("mrpc", ex, {{"0", "1", 1}, {"0", "1", 2}}), Error);
}
