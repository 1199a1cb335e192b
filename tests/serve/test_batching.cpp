// The pieces under `lopa serve`'s continuous batching, each against an independent path on the real
// stories260K model: rows joining and leaving a KV cache (KVCache::add_rows / keep_rows) against the
// uncached forward of each whole sequence (and a KV prefix against set_prefix); the LoRA bank's gathered
// per-row matmul against each run attached alone; the soft-prompt wire codec against RFC 4648's vectors.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>

#include "baselines/lora.h"
#include "runtime/base/error.h"
#include "runtime/distributed/process_group.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/kv_cache.h"
#include "serve/soft_prompt_codec.h"

using namespace lopa;

namespace {
const std::string kStories = std::string(LOPA_SHARED_DIR) + "/models/stories260K";

at::Tensor ids_of(const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).view({1, static_cast<int64_t>(v.size())}); }

// Last-position hidden state of `seq` through the plain uncached forward.
at::Tensor uncached_last(const CausalLM& fm, const std::vector<int64_t>& seq) {
  auto h = fm.forward(fm.embed(ids_of(seq)), at::ones({1, static_cast<int64_t>(seq.size())}, at::kLong));
  return h.select(1, h.size(1) - 1).squeeze(0);
}

// A 1-row cache prefilled with `seq` (after an optional frozen prefix).
KVCache prefilled(const CausalLM& fm, const std::vector<int64_t>& seq, const std::vector<at::Tensor>* pk = nullptr,
                  const std::vector<at::Tensor>* pv = nullptr) {
  auto c = KVCache::for_model(fm, 1, static_cast<int64_t>(seq.size()) + 1);
  if (pk) c.set_prefix(*pk, *pv);
  fm.forward(fm.embed(ids_of(seq)), at::ones({1, static_cast<int64_t>(seq.size())}, at::kLong), &c);
  return c;
}
}  // namespace

TEST(ContinuousBatchCache, RowsJoinAndLeaveWithTheirOwnPositions) {
  auto fm = CausalLM::load(kStories, ProcessGroup::single());
  c10::InferenceMode guard;
  std::vector<int64_t> a = {1, 34, 78, 200, 11, 9, 300, 41}, b = {1, 55, 7};
  const std::vector<int64_t> fa = {17, 18, 19}, fb = {23, 24, 25, 26, 27};
  KVCache batch;
  batch.add_rows(prefilled(fm, a));
  batch.add_rows(prefilled(fm, b));  // b (3) left-padded to a's 8 positions
  ASSERT_EQ(batch.batch(), 2);
  ASSERT_EQ(batch.length(), 8);
  EXPECT_EQ(batch.mask().sum().item<int64_t>(), 11);
  auto step = [&](const std::vector<int64_t>& toks) {
    const int64_t B = static_cast<int64_t>(toks.size());
    auto h = fm.forward(fm.embed(at::tensor(toks, at::kLong).view({B, 1})), at::ones({B, 1}, at::kLong), &batch);
    return h.select(1, 0);
  };
  for (int i = 0; i < 2; ++i) {
    auto h = step({fa[i], fb[i]});
    a.push_back(fa[i]);
    b.push_back(fb[i]);
    EXPECT_LT((h[0] - uncached_last(fm, a)).abs().max().item<float>(), 1e-4) << "row a, step " << i;
    EXPECT_LT((h[1] - uncached_last(fm, b)).abs().max().item<float>(), 1e-4) << "row b, step " << i;
  }
  // a leaves: b's leading padding goes with it.
  batch.keep_rows({1});
  EXPECT_EQ(batch.batch(), 1);
  EXPECT_EQ(batch.length(), static_cast<int64_t>(b.size()));
  // c joins with a frozen KV prefix of 3 positions (prefix tuning), counted in its positions.
  at::manual_seed(7);
  std::vector<at::Tensor> pk, pv;
  for (int64_t l = 0; l < fm.num_layers(); ++l) {
    pk.push_back(at::randn({1, fm.num_kv_heads_local(), 3, fm.head_dim()}));
    pv.push_back(at::randn({1, fm.num_kv_heads_local(), 3, fm.head_dim()}));
  }
  std::vector<int64_t> c = {1, 90, 91, 92, 93, 94, 95, 96, 97};
  batch.add_rows(prefilled(fm, c, &pk, &pv));
  EXPECT_EQ(batch.length(), 12);  // c: 3 prefix + 9 tokens, longer than b's 5: b padded again
  auto h = step({fb[2], 29});
  b.push_back(fb[2]);
  c.push_back(29);
  EXPECT_LT((h[0] - uncached_last(fm, b)).abs().max().item<float>(), 1e-4) << "row b after c joined";
  // c's reference: the whole sequence in one forward over a cache holding only the prefix.
  auto ref = KVCache::for_model(fm, 1, 16);
  ref.set_prefix(pk, pv);
  auto hc = fm.forward(fm.embed(ids_of(c)), at::ones({1, static_cast<int64_t>(c.size())}, at::kLong), &ref);
  EXPECT_LT((h[1] - hc.select(1, hc.size(1) - 1).squeeze(0)).abs().max().item<float>(), 1e-4) << "row c (prefix)";
  batch.keep_rows({});
  EXPECT_EQ(batch.batch(), 0);
}

TEST(LoraBankTest, EachRowGetsItsOwnRunOrNone) {
  auto fm = CausalLM::load(kStories, ProcessGroup::single());
  LoraOptions o1, o2;
  o1.rank = 2;
  o1.targets = {"q", "v"};
  o2.rank = 4;
  o2.alpha = 8;
  o2.targets = {"all-linear"};
  Lora l1(o1, fm), l2(o2, fm);
  at::manual_seed(3);
  {
    at::NoGradGuard g;
    for (auto* l : {&l1, &l2})
      for (auto& [name, t] : l->parameters()) t.normal_(0, 0.5);
    l1.set_training(false);
    l2.set_training(false);
  }
  c10::InferenceMode guard;
  const std::vector<std::vector<int64_t>> seqs = {{1, 5, 6, 7, 8}, {1, 9, 10, 11, 12}, {1, 13, 14, 15, 16}};
  std::vector<at::Tensor> plain, with1, with2;
  for (const auto& s : seqs) {
    plain.push_back(uncached_last(fm, s));
    l1.attach(fm);
    with1.push_back(uncached_last(fm, s));
    l1.detach(fm);
    l2.attach(fm);
    with2.push_back(uncached_last(fm, s));
    l2.detach(fm);
  }
  ASSERT_GT((with1[0] - plain[0]).abs().max().item<float>(), 1e-2) << "the runs must change the FM";
  ASSERT_GT((with2[0] - with1[0]).abs().max().item<float>(), 1e-2);

  LoraBank bank(fm);
  EXPECT_EQ(bank.add(l1), 0);
  EXPECT_EQ(bank.add(l2), 1);
  auto ids = at::cat({ids_of(seqs[0]), ids_of(seqs[1]), ids_of(seqs[2])}, 0);
  for (const std::vector<int64_t>& rows : {std::vector<int64_t>{0, -1, 1}, {1, 0, -1}, {-1, -1, -1}, {1, 1, 0}}) {
    bank.set_rows(rows);
    auto h = fm.forward(fm.embed(ids), at::ones({3, 5}, at::kLong));
    for (int64_t b = 0; b < 3; ++b) {
      const auto& ref = rows[b] == 0 ? with1[b] : rows[b] == 1 ? with2[b] : plain[b];
      EXPECT_LT((h[b][4] - ref).abs().max().item<float>(), 1e-4) << "row " << b << " run " << rows[b];
    }
  }
  bank.clear();
  EXPECT_LT((uncached_last(fm, seqs[0]) - plain[0]).abs().max().item<float>(), 1e-6) << "clear() restores the FM";
  EXPECT_THROW(bank.set_rows({2}), Error);
}

TEST(SoftPromptCodec, Rfc4648VectorsAndFloat32RoundTrip) {
  using namespace lopa::serve;
  const std::vector<std::pair<std::string, std::string>> v = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                              {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                              {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, enc] : v) {
    EXPECT_EQ(base64_encode(plain), enc);
    EXPECT_EQ(base64_decode(enc, "t"), plain);
  }
  EXPECT_THROW(base64_decode("Zm9", "t"), Error);
  EXPECT_THROW(base64_decode("Zm!v", "t"), Error);
  EXPECT_THROW(base64_decode("Z===", "t"), Error);
  // 1.0f is 00 00 80 3F little-endian: "AACAPw==".
  EXPECT_EQ(encode_soft_prompt(at::ones({1, 1})), "AACAPw==");
  auto z = at::randn({3, 8});
  auto back = decode_soft_prompt(encode_soft_prompt(z), 8, "t");
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{1, 3, 8}));
  EXPECT_TRUE(at::equal(back[0], z));
  try {
    decode_soft_prompt(encode_soft_prompt(z), 16, "soft_prompt");  // 96 bytes: not m × 16 floats
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("soft_prompt"), std::string::npos) << e.what();
  }
  auto bad = z.clone();
  bad[0][0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(decode_soft_prompt(encode_soft_prompt(bad), 8, "t"), Error);
}
