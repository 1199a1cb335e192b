// Checkpoint directories: single file, sharded index, tied embeddings, pytorch_model.bin, and their errors.
#include <gtest/gtest.h>

#include "model_test_util.h"
#include "runtime/io/checkpoint.h"
#include "runtime/base/error.h"
#include "runtime/model/causal_lm.h"

using namespace lopa;
using namespace lopa::testing;

namespace {
// Re-saves the fixture as two shards + model.safetensors.index.json (as transformers does for big models).
std::string shard_fixture() {
  const auto dir = temp_dir("sharded");
  auto src = SafetensorsFile::open(stories_dir() + "/model.safetensors");
  NamedTensors a, b;
  nlohmann::json index;
  int i = 0;
  for (const auto& n : src.names()) {
    const bool first = (i++ % 2) == 0;
    (first ? a : b).push_back({n, src.tensor(n)});
    index["weight_map"][n] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  save_safetensors(dir + "/model-00001-of-00002.safetensors", a);
  save_safetensors(dir + "/model-00002-of-00002.safetensors", b);
  write_text(dir + "/model.safetensors.index.json", index.dump());
  write_text(dir + "/config.json", read_text(stories_dir() + "/config.json"));
  return dir;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}
}  // namespace

TEST(Checkpoint, ShardedIndexMatchesSingleFile) {
  const auto dir = shard_fixture();
  auto one = Checkpoint::open(stories_dir());
  auto two = Checkpoint::open(dir);
  EXPECT_EQ(one.names(), two.names());
  EXPECT_EQ(one.num_elements(), 260032);
  for (const auto& n : one.names()) EXPECT_TRUE(one.tensor(n).equal(two.tensor(n))) << n;
  EXPECT_NE(two.file_of("model.norm.weight").find("-of-00002"), std::string::npos);
  EXPECT_FALSE(two.contains("lm_head.weight"));  // tied: the embedding is the output layer

  // The model loads from either with identical logits.
  auto pg = ProcessGroup::single();
  auto m1 = CausalLM::load(stories_dir(), pg), m2 = CausalLM::load(dir, pg);
  auto ids = at::tensor({1, 403, 407, 261, 378}, at::kLong).view({1, 5});
  auto l1 = m1.lm_logits(m1.forward(m1.embed(ids), {})), l2 = m2.lm_logits(m2.forward(m2.embed(ids), {}));
  EXPECT_TRUE(l1.equal(l2));
}

TEST(Checkpoint, TorchBinLoadsTheSameModel) {
  // stories260K re-saved by PyTorch as pytorch_model.bin (torch.save of an OrderedDict state dict).
  const auto dir = temp_dir("bin_model");
  const auto r = run("/usr/bin/python3 " + std::string(LOPA_SOURCE_DIR) +
                     "/tests/runtime/io/write_torch_bin.py convert " + stories_dir() + " " + dir);
  ASSERT_EQ(r.status, 0) << r.err;
  auto st = Checkpoint::open(stories_dir());
  auto bin = Checkpoint::open(dir);
  EXPECT_EQ(bin.weights_file(), "pytorch_model.bin");
  EXPECT_EQ(st.names(), bin.names());
  EXPECT_EQ(bin.num_elements(), 260032);
  for (const auto& n : st.names()) EXPECT_TRUE(st.tensor(n).equal(bin.tensor(n))) << n;

  auto pg = ProcessGroup::single();
  auto m1 = CausalLM::load(stories_dir(), pg), m2 = CausalLM::load(dir, pg);
  auto ids = at::tensor({1, 403, 407, 261, 378}, at::kLong).view({1, 5});
  auto l1 = m1.lm_logits(m1.forward(m1.embed(ids), {})), l2 = m2.lm_logits(m2.forward(m2.embed(ids), {}));
  EXPECT_TRUE(l1.equal(l2));
  std::filesystem::remove_all(dir);
}

TEST(Checkpoint, Errors) {
  const auto dir = shard_fixture();
  auto ck = Checkpoint::open(dir);
  auto msg = error_of([&] { ck.tensor("model.layers.9.mlp.up_proj.weight"); });
  EXPECT_NE(msg.find("tensor 'model.layers.9.mlp.up_proj.weight' not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;

  std::filesystem::remove(dir + "/model-00002-of-00002.safetensors");
  msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_NE(msg.find("model-00002-of-00002.safetensors' named for"), std::string::npos) << msg;

  write_text(dir + "/model.safetensors.index.json", "{\"weight_map\": 3}");
  msg = error_of([&] { Checkpoint::open(dir); });
  EXPECT_NE(msg.find("model.safetensors.index.json: missing object 'weight_map'"), std::string::npos) << msg;

  const auto empty = temp_dir("empty");
  msg = error_of([&] { Checkpoint::open(empty); });
  EXPECT_NE(msg.find("no model.safetensors"), std::string::npos) << msg;

  // Config whose sizes disagree with the weights, and one with an unknown architecture.
  const auto bad = temp_dir("badcfg");
  std::filesystem::copy_file(stories_dir() + "/model.safetensors", bad + "/model.safetensors");
  auto cfg = nlohmann::json::parse(read_text(stories_dir() + "/config.json"));
  cfg["intermediate_size"] = 170;
  write_text(bad + "/config.json", cfg.dump());
  msg = error_of([&] { CausalLM::load(bad, ProcessGroup::single()); });
  EXPECT_NE(msg.find("has shape [172, 64] but"), std::string::npos) << msg;
  cfg["architectures"] = {"FalconForCausalLM"};
  write_text(bad + "/config.json", cfg.dump());
  msg = error_of([&] { CausalLM::load(bad, ProcessGroup::single()); });
  EXPECT_NE(msg.find(bad + "/config.json: unsupported architecture 'FalconForCausalLM'"), std::string::npos) << msg;
}
