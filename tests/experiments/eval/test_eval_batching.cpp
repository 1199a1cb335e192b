// Evaluation batches items of similar length together (longest first) and the encoder embeds in that
// order too; results must still belong to their items. Reference: each item scored / embedded alone,
// in a batch of one, where no padding and no reordering exist.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "experiments/eval/batching.h"
#include "experiments/eval/evaluate.h"
#include "experiments/eval/prompt_method.h"
#include "lopa/method.h"
#include "runtime/distributed/process_group.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"

using namespace lopa;

namespace {

const std::string kStories = std::string(LOPA_SHARED_DIR) + "/models/stories260K";

// A soft prompt that depends on the instance embedding (as LoPA's and IDPG's do): z = tanh(e W) as 2
// tokens, so a row that received another item's embedding scores differently.
class EmbeddingPrompt : public Method {
 public:
  EmbeddingPrompt(int64_t H, int64_t d) : w_(at::randn({H, 2 * d}, at::kFloat) * 0.5), d_(d) {}
  std::string name() const override { return "embedding-prompt"; }
  NamedTensors parameters() override { return {}; }
  int64_t num_trainable_parameters() const override { return 0; }
  bool needs_encoder() const override { return true; }
  int64_t prompt_length() const override { return 2; }
  at::Tensor soft_prompt(const at::Tensor& e, int64_t b) override {
    EXPECT_EQ(e.size(0), b);
    return at::tanh(at::matmul(e, w_)).view({b, 2, d_});
  }
  void save(const std::string&) const override {}
  void load(const std::string&) override {}

 private:
  at::Tensor w_;
  int64_t d_;
};

Example sst2(const std::string& id, const std::string& sentence, int64_t label) {
  Example e;
  e.id = id;
  e.fields = {{"sentence", sentence}};
  e.label_index = label;
  e.label = std::to_string(label);
  return e;
}

}  // namespace

TEST(EvalBatching, SortedBatchesGiveEachItemItsOwnResult) {
  at::manual_seed(5);
  auto fm = CausalLM::load(kStories, ProcessGroup::single());
  const auto tok = Tokenizer::from_dir(kStories);
  const int64_t pad = tok.pad_id().value_or(tok.eos_id().value_or(0));
  // Lengths deliberately out of order, with a tie (ids 2 and 5) and duplicates in the encoder's index list.
  const std::vector<Example> ex = {
      sst2("0", "a fine film", 1),
      sst2("1", "dull , long , slow and very badly acted from the first scene to the very last one", 0),
      sst2("2", "the dog ran home", 1),
      sst2("3", "ok", 0),
      sst2("4", "Lily saw a big red dog in the garden and she was very happy about it", 1),
      sst2("5", "the cat sat down", 0),
      sst2("6", "bad", 0)};
  const auto items = make_items("sst2", ex, TemplateConfig{}, tok, nullptr, 128);
  ASSERT_EQ(items.size(), ex.size());

  // longest_first: a permutation, non-increasing in prompt + longest target, ties in index order.
  const auto order = longest_first(items);
  ASSERT_EQ(order.size(), items.size());
  auto len = [&](int64_t i) {
    size_t t = 0;
    for (const auto& c : items[i].targets) t = std::max(t, c.size());
    return items[i].prompt.size() + t;
  };
  std::vector<bool> seen(items.size(), false);
  for (size_t k = 0; k < order.size(); ++k) {
    ASSERT_FALSE(seen.at(order[k]));
    seen[order[k]] = true;
    if (k > 0) {
      EXPECT_GE(len(order[k - 1]), len(order[k]));
      if (len(order[k - 1]) == len(order[k])) {
        EXPECT_LT(order[k - 1], order[k]);
      }
    }
  }
  EXPECT_EQ(order.front(), 1);

  // Encoder rows: a scrambled index list (with a repeat) in batches of 3 equals each item embedded alone:
  // the last state of the whole model's forward over its unpadded tokens (the decoder's pooling).
  at::NoGradGuard no_grad;
  const std::vector<int64_t> idx = {3, 1, 6, 1, 0, 4, 2, 5};
  const auto batched = encode_instances(fm, items, idx, "auto", 3, pad);
  ASSERT_EQ(batched.size(0), static_cast<int64_t>(idx.size()));
  for (size_t r = 0; r < idx.size(); ++r) {
    const auto& in = items[idx[r]].encoder_input;
    const auto ids = at::tensor(in, at::kLong).view({1, static_cast<int64_t>(in.size())});
    const auto alone = fm.forward(fm.embed(ids), at::Tensor()).select(1, ids.size(1) - 1);
    // float32 round-off relative to the states' size: a batch of 3 padded rows and one row alone run
    // products of different shapes (and thread teams), summed in different orders.
    const double scale = std::max(1.0, alone[0].abs().max().item<double>());
    EXPECT_LT((batched[r] - alone[0]).abs().max().item<double>(), 1e-5 * scale)
        << "row " << r << " (item " << idx[r] << "), states up to " << scale;
  }

  // Scoring: batches of 4 candidate rows (2 items) in length order vs one item per call.
  std::vector<int64_t> all(items.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  const auto enc = encode_instances(fm, items, all, "auto", 4, pad);
  EmbeddingPrompt method(fm.hidden_size(), fm.hidden_size());
  const auto res = evaluate_items("sst2", ex, items, method, fm, enc, 4, pad);
  ASSERT_EQ(res.predictions.size(), items.size());
  double loss = 0;
  bool differ = false;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::vector<Example> one_ex = {ex[i]};
    const std::vector<TrainItem> one = {items[i]};
    const auto alone = evaluate_items("sst2", one_ex, one, method, fm, enc.narrow(0, i, 1), 1, pad);
    EXPECT_EQ(res.predictions[i], alone.predictions.at(0)) << "item " << i;
    loss += alone.metrics.at("loss");
    // The embedding matters: item i scored with another item's embedding changes its loss.
    const auto other = evaluate_items("sst2", one_ex, one, method, fm, enc.narrow(0, (i + 1) % items.size(), 1), 1, pad);
    differ = differ || std::abs(other.metrics.at("loss") - alone.metrics.at("loss")) > 1e-4;
  }
  EXPECT_NEAR(res.metrics.at("loss"), loss / static_cast<double>(items.size()), 1e-5);
  EXPECT_TRUE(differ);
}
