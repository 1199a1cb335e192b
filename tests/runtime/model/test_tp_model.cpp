// The real Llama model under tensor parallelism equals the same model on one rank: logits, loss, and
// the gradient w.r.t. a soft prompt prepended to the input embeddings, on the pretrained stories260K
// and on a random-init model with grouped-query attention (fewer KV heads than tp ranks, a
// vocabulary that tp does not divide). The tp = 1 reference is loaded on every rank with the self
// group. Also: soft-prompt training over a tp × dp grid equals one process with the global batch.
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "runtime/distributed/data_parallel.h"
#include "runtime/model/init_model.h"
#include "runtime/model/causal_lm.h"
#include "runtime/distributed/process_group.h"

using namespace lopa;
namespace fs = std::filesystem;

namespace {

int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}
int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// tp = 2 when the world is even (np 2: tp 2; np 4: tp 2 × dp 2), else 1.
ProcessGroup& grid() {
  static ProcessGroup pg = ProcessGroup::init(world_size() % 2 == 0 ? 2 : 1, "cpu");
  return pg;
}

double rel_err(const at::Tensor& got, const at::Tensor& want) {
  const auto g = got.to(at::kDouble), w = want.to(at::kDouble);
  return (g - w).abs().max().item<double>() / std::max(w.abs().max().item<double>(), 1e-30);
}

// A random-init GQA Llama: 4 query heads over 1 KV head, vocabulary 90 (padded under tp 4).
std::string gqa_model_dir() {
  static std::string dir = [] {
    // Each rank writes its own copy (same seed → same weights): no cross-rank file race.
    const fs::path d = fs::path(::testing::TempDir()) / ("lopa_tp_gqa_" + std::to_string(getpid()));
    fs::create_directories(d);
    const fs::path cfg = d / "source_config.json";
    std::ofstream(cfg) << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 48,
      "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 12,
      "num_hidden_layers": 2, "vocab_size": 90, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
      "rope_theta": 10000.0, "tie_word_embeddings": false, "initializer_range": 0.2, "bos_token_id": 1,
      "eos_token_id": 2, "torch_dtype": "float32"})";
    init_model(cfg.string(), (d / "model").string(), "", 1234);
    return (d / "model").string();
  }();
  return dir;
}

std::string stories_dir() { return std::string(LOPA_SHARED_DIR) + "/models/stories260K"; }

// Forward with a soft prompt Z (B × m × d) before the embedded ids; labels -100 on the prompt.
struct Result {
  at::Tensor logits, loss, z_grad;
};
Result run(const CausalLM& model, const at::Tensor& ids, const at::Tensor& z0) {
  at::Tensor z = z0.clone().requires_grad_();
  const int64_t B = ids.size(0), m = z.size(1);
  at::Tensor embeds = at::cat({z, model.embed(ids)}, 1);
  at::Tensor hidden = model.forward(embeds, at::Tensor());
  at::Tensor labels = at::cat({at::full({B, m}, -100, at::kLong), ids}, 1);
  at::Tensor loss = model.lm_loss(hidden, labels);
  loss.backward();
  return {model.lm_logits(hidden.detach()), loss.detach(), z.grad()};
}

void compare_tp_to_single(const std::string& dir) {
  ProcessGroup& pg = grid();
  const CausalLM single = CausalLM::load(dir, ProcessGroup::single());
  const CausalLM sharded = CausalLM::load(dir, pg);
  const int64_t V = single.vocab_size(), d = single.hidden_size();
  torch::manual_seed(11);
  const at::Tensor ids = torch::randint(3, V, {2, 9}, at::kLong);
  const at::Tensor z = torch::randn({2, 3, d}) * 0.05;
  const Result want = run(single, ids, z), got = run(sharded, ids, z);
  ASSERT_EQ(got.logits.sizes(), want.logits.sizes());
  EXPECT_LT(rel_err(got.logits, want.logits), 1e-5);
  EXPECT_LT(rel_err(got.loss, want.loss), 1e-5) << got.loss.item<float>() << " vs " << want.loss.item<float>();
  EXPECT_LT(rel_err(got.z_grad, want.z_grad), 1e-5);
}

}  // namespace

TEST(TpModel, Stories260KMatchesTp1) { compare_tp_to_single(stories_dir()); }

TEST(TpModel, RandomGqaModelMatchesTp1) { compare_tp_to_single(gqa_model_dir()); }

TEST(TpModel, LossIsFullCrossEntropyOfTheLogits) {
  ProcessGroup& pg = grid();
  const CausalLM model = CausalLM::load(gqa_model_dir(), pg);
  torch::manual_seed(12);
  const at::Tensor ids = torch::randint(3, model.vocab_size(), {3, 7}, at::kLong);
  at::Tensor hidden = model.forward(model.embed(ids), at::Tensor());
  const at::Tensor loss = model.lm_loss(hidden, ids);          // vocab-parallel
  const at::Tensor logits = model.lm_logits(hidden).detach();  // gathered, for the check only
  const at::Tensor ref = at::cross_entropy_loss(logits.narrow(1, 0, 6).reshape({-1, model.vocab_size()}),
                                                ids.narrow(1, 1, 6).reshape({-1}));
  EXPECT_LT(rel_err(loss, ref), 1e-5);
}

// Soft-prompt training over the grid (tp 2 × dp 2 at np 4): each dp rank takes its shard of the global
// batch, gradients averaged over dp; equals SGD on the whole batch in one tp = 1 process.
TEST(TpModel, SoftPromptTrainingOnTheGridEqualsOneProcess) {
  ProcessGroup& pg = grid();
  const std::string dir = stories_dir();
  const int64_t global = 2 * pg.dp_size, m = 4, steps = 2;
  auto train = [&](const CausalLM& model, const ProcessGroup& g) {
    torch::manual_seed(21);
    at::Tensor z = (torch::randn({1, m, model.hidden_size()}) * 0.05).requires_grad_();
    torch::optim::SGD opt({z}, torch::optim::SGDOptions(1.0));
    DataParallel dp(g.dp, {z});
    for (int s = 0; s < steps; ++s) {
      torch::manual_seed(100 + s);
      at::Tensor ids = torch::randint(3, model.vocab_size(), {global, 8}, at::kLong);
      ids = shard_batch(ids, g.dp_rank, g.dp_size);
      const int64_t B = ids.size(0);
      opt.zero_grad();
      at::Tensor hidden = model.forward(at::cat({z.expand({B, m, -1}), model.embed(ids)}, 1), at::Tensor());
      model.lm_loss(hidden, at::cat({at::full({B, m}, -100, at::kLong), ids}, 1)).backward();
      dp.average_gradients();
      opt.step();
    }
    return z.detach();
  };
  const ProcessGroup one = ProcessGroup::single();
  const at::Tensor want = train(CausalLM::load(dir, one), one);
  const at::Tensor got = train(CausalLM::load(dir, pg), pg);
  EXPECT_LT(rel_err(got, want), 1e-5) << "tp " << pg.tp_size << " dp " << pg.dp_size << " rank " << world_rank();
}
