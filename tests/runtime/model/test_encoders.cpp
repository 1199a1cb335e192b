// The bidirectional encoders (RoBERTa / CodeBERT, BERT, CodeSage) against independent PyTorch references
// written from transformers' modeling files and CodeSage's remote code (bench/{roberta,bert,codesage}_ref.py):
// random-init checkpoints of tiny shapes of each family's hub config, with non-zero biases and non-trivial
// LayerNorms, written by the reference itself under HF's state-dict names (with and without the base
// model's key prefix, with the tensors hub files carry beside them, as .bin). `lopa logits` (masked-LM
// logits) and `lopa embed` (each family's pooling, and the others) must match within 1e-5 on unpadded and
// right-padded inputs; tp = 2 must equal tp = 1; the Encoder API batched with padding must equal the
// reference row by row.
#include <gtest/gtest.h>

#include "model_test_util.h"
#include "runtime/base/error.h"
#include "runtime/model/architecture.h"
#include "runtime/io/safetensors.h"
#include "runtime/model/encoder.h"
#include "runtime/model/kv_cache.h"

using namespace lopa::testing;

namespace {

const std::string kPython = "/usr/bin/python3 ";
const std::string kLopa = std::string(LOPA_BIN) + " ";

std::string ref_script(const std::string& family) { return std::string(LOPA_SOURCE_DIR) + "/bench/" + family + "_ref.py"; }
std::string config_path(const std::string& name) { return std::string(LOPA_SOURCE_DIR) + "/bench/configs/" + name + ".json"; }

// A checkpoint written by the reference (its names and init) from the family's tiny config with edits.
std::string make_reference_model(const std::string& family, const std::string& tag, const std::string& extra_args,
                                 const nlohmann::json& config_edits = nlohmann::json::object()) {
  const auto dir = temp_dir(tag);
  auto cfg = nlohmann::json::parse(read_text(config_path(family + "-tiny")));
  cfg.update(config_edits);
  write_text(dir + "/config.json", cfg.dump(2));
  auto r = run(kPython + ref_script(family) + " init --config " + dir + "/config.json --out " + dir + "/model --seed 5 " +
               extra_args);
  EXPECT_EQ(r.status, 0) << r.err;
  return dir + "/model";
}

nlohmann::json base_model(const std::string& family) {
  const char* a = family == "roberta" ? "RobertaModel" : family == "bert" ? "BertModel" : "CodeSageModel";
  return {{"architectures", {a}}};
}
nlohmann::json mlm_model(const std::string& family) {
  const char* a = family == "roberta" ? "RobertaForMaskedLM" : family == "bert" ? "BertForMaskedLM" : "CodeSageForMaskedLM";
  return {{"architectures", {a}}};
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

int64_t pad_id(const std::string& model) {
  const auto j = nlohmann::json::parse(read_text(model + "/config.json"));
  return j.contains("pad_token_id") && j["pad_token_id"].is_number_integer() ? j["pad_token_id"].get<int64_t>() : 0;
}

// Unpadded rows of several lengths (one a lone token equal to RoBERTa's pad id), rows right-padded with the
// pad token and with other ids under a 0 mask, and the same content as an unpadded row (padding invariance).
std::vector<nlohmann::json> input_rows(int64_t pad) {
  std::vector<nlohmann::json> rows = {
      {{"ids", {0, 5, 17, 42, 99, 3, 7, 2}}},
      {{"ids", {1}}},
      {{"ids", {0, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 2}}},
      {{"ids", {0, 9, 8, 7, 6, 2, pad, pad}}, {"attention_mask", {1, 1, 1, 1, 1, 1, 0, 0}}},
      {{"ids", {0, 200, 31, 2, 40, 41, 42}}, {"attention_mask", {1, 1, 1, 1, 0, 0, 0}}},
      {{"ids", {0, 9, 8, 7, 6, 2}}},
  };
  return rows;
}

std::string write_inputs(const std::string& model) {
  const auto dir = temp_dir("in");
  std::string text;
  for (const auto& r : input_rows(pad_id(model))) text += r.dump() + "\n";
  write_text(dir + "/inputs.jsonl", text);
  return dir + "/inputs.jsonl";
}

// max |Δ| over the real positions of every input line; also checks the shapes agree.
double max_logit_diff(const std::string& ours_text, const std::string& ref_text, const std::string& inputs_path) {
  const auto ours = json_lines(ours_text), ref = json_lines(ref_text), in = json_lines(read_text(inputs_path));
  EXPECT_EQ(ours.size(), in.size());
  EXPECT_EQ(ref.size(), in.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < std::min({ours.size(), ref.size(), in.size()}); ++i) {
    const auto& a = ours[i]["logits"];
    const auto& b = ref[i]["logits"];
    EXPECT_EQ(a.size(), b.size());
    EXPECT_EQ(a.size(), in[i]["ids"].size());
    for (size_t t = 0; t < std::min(a.size(), b.size()); ++t) {
      if (in[i].contains("attention_mask") && in[i]["attention_mask"][t] == 0) continue;
      EXPECT_EQ(a[t].size(), b[t].size());
      for (size_t v = 0; v < std::min(a[t].size(), b[t].size()); ++v) {
        worst = std::max(worst, std::abs(a[t][v].get<double>() - b[t][v].get<double>()));
        scale = std::max(scale, std::abs(b[t][v].get<double>()));
      }
    }
  }
  EXPECT_GT(scale, 0.1) << "degenerate model: all logits near zero";
  return worst;
}

std::vector<std::vector<double>> embeddings(const std::string& text) {
  std::vector<std::vector<double>> out;
  for (const auto& j : json_lines(text)) out.push_back(j.at("embedding").get<std::vector<double>>());
  return out;
}

double max_embed_diff(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i].size(), b[i].size());
    for (size_t k = 0; k < std::min(a[i].size(), b[i].size()); ++k) {
      worst = std::max(worst, std::abs(a[i][k] - b[i][k]));
      scale = std::max(scale, std::abs(b[i][k]));
    }
  }
  EXPECT_GT(scale, 0.01) << "degenerate embeddings";
  return worst;
}

void expect_logits_match(const std::string& family, const std::string& model) {
  const auto inputs = write_inputs(model);
  auto ours = run(kLopa + "logits --model " + model + " --input " + inputs);
  ASSERT_EQ(ours.status, 0) << ours.err;
  auto ref = run(kPython + ref_script(family) + " logits --model " + model + " --input " + inputs);
  ASSERT_EQ(ref.status, 0) << ref.err;
  EXPECT_LT(max_logit_diff(ours.out, ref.out, inputs), 1e-5) << family << " " << model;
}

// lopa embed against the reference for `poolings` ("auto" first); returns the auto embeddings.
std::vector<std::vector<double>> expect_embed_match(const std::string& family, const std::string& model,
                                                    const std::vector<std::string>& poolings = {"auto"}) {
  const auto inputs = write_inputs(model);
  std::vector<std::vector<double>> first;
  for (const auto& p : poolings) {
    auto ours = run(kLopa + "embed --model " + model + " --input " + inputs + " --pooling " + p);
    EXPECT_EQ(ours.status, 0) << ours.err;
    auto ref = run(kPython + ref_script(family) + " embed --model " + model + " --input " + inputs + " --pooling " + p);
    EXPECT_EQ(ref.status, 0) << ref.err;
    const auto a = embeddings(ours.out), b = embeddings(ref.out);
    EXPECT_EQ(a.size(), input_rows(0).size());
    EXPECT_LT(max_embed_diff(a, b), 1e-5) << family << " pooling " << p << " " << model;
    if (first.empty()) first = a;
  }
  return first;
}

// Rows 3 (padded) and 5 (the same ids unpadded) embed alike: padding changes nothing for a real token.
void expect_padding_invariant(const std::vector<std::vector<double>>& e) {
  ASSERT_GE(e.size(), 6u);
  EXPECT_LT(max_embed_diff({e[3]}, {e[5]}), 1e-5);
}

}  // namespace

// --- RoBERTa / CodeBERT ------------------------------------------------------------------------------------------

TEST(Encoders, RobertaMaskedLmLogitsMatchReference) {
  expect_logits_match("roberta", make_reference_model("roberta", "rm", ""));
}

TEST(Encoders, RobertaHubBinWithTiedCopiesAndPooler) {
  // roberta-base's pytorch_model.bin: lm_head.decoder.{weight,bias} copies and a position_ids buffer beside the model.
  const auto model = make_reference_model("roberta", "rb", "--format bin --extras");
  ASSERT_TRUE(std::filesystem::exists(model + "/pytorch_model.bin"));
  expect_logits_match("roberta", model);
  expect_padding_invariant(expect_embed_match("roberta", model));
}

TEST(Encoders, RobertaModelEmbeddingsEveryPooling) {
  // codebert-base: RobertaModel with its pooler (unused), keys without "roberta.".
  const auto model = make_reference_model("roberta", "re", "--extras", base_model("roberta"));
  expect_padding_invariant(expect_embed_match("roberta", model, {"auto", "first", "mean", "last"}));
}

TEST(Encoders, RobertaModelReadsPrefixedKeys) {
  // A RobertaModel config over keys saved by the head model ("roberta.embeddings…"), as from_pretrained reads them;
  // and a RobertaForMaskedLM config over keys without the prefix.
  expect_embed_match("roberta", make_reference_model("roberta", "rp", "--prefix yes", base_model("roberta")));
  expect_logits_match("roberta", make_reference_model("roberta", "rn", "--prefix no"));
}

TEST(Encoders, RobertaUntiedDecoderAndTwoTokenTypes) {
  expect_logits_match("roberta", make_reference_model("roberta", "ru", "", {{"tie_word_embeddings", false},
                                                                          {"type_vocab_size", 2}}));
}

// --- BERT --------------------------------------------------------------------------------------------------------

TEST(Encoders, BertMaskedLmLogitsMatchReference) {
  expect_logits_match("bert", make_reference_model("bert", "bm", ""));
}

TEST(Encoders, BertLegacyNamesAndPretrainingHeads) {
  // bert-base-uncased: LayerNorm.gamma / beta, cls.seq_relationship and the pooler beside the MLM head.
  const auto model = make_reference_model("bert", "bl", "--legacy-names --extras");
  expect_logits_match("bert", model);
  expect_padding_invariant(expect_embed_match("bert", model, {"auto", "mean"}));
}

TEST(Encoders, BertModelEmbeddings) {
  const auto model = make_reference_model("bert", "be", "", base_model("bert"));
  expect_padding_invariant(expect_embed_match("bert", model, {"auto", "last"}));
  expect_embed_match("bert", make_reference_model("bert", "bp", "--prefix yes", base_model("bert")));
}

// --- CodeSage ----------------------------------------------------------------------------------------------------

TEST(Encoders, CodeSageEmbeddingsMatchReference) {
  const auto model = make_reference_model("codesage", "ce", "");
  const auto e = expect_embed_match("codesage", model, {"auto", "first", "last"});
  expect_padding_invariant(e);
  for (const auto& v : e) {  // the rule is L2-normalised
    double n = 0;
    for (double x : v) n += x * x;
    EXPECT_NEAR(n, 1.0, 1e-5);
  }
}

TEST(Encoders, CodeSageBinAndPrefixedKeys) {
  // As published (.bin), and a CodeSageModel config over keys saved by CodeSageForMaskedLM ("transformer.").
  expect_embed_match("codesage", make_reference_model("codesage", "cb", "--format bin"));
  expect_embed_match("codesage", make_reference_model("codesage", "cp", "--prefix yes"));
}

TEST(Encoders, CodeSageMaskedLmLogits) {
  expect_logits_match("codesage", make_reference_model("codesage", "cm", "", mlm_model("codesage")));
}

// --- tensor parallelism ------------------------------------------------------------------------------------------

TEST(Encoders, TensorParallelEqualsOneRank) {
  // tp = 2 splits heads (CodeSage's fused c_attn by rows), MLP features and the vocabulary (MLM decoder + bias).
  for (const std::string family : {"roberta", "bert", "codesage"}) {
    const auto model = make_reference_model(family, family + "tp", "", mlm_model(family));
    const auto inputs = write_inputs(model);
    for (const std::string cmd : {"logits", "embed"}) {
      auto one = run(kLopa + cmd + " --model " + model + " --input " + inputs);
      ASSERT_EQ(one.status, 0) << one.err;
      auto two = run(std::string(LOPA_MPIRUN_CMD) + " -np 2 " + kLopa + cmd + " --tp 2 --model " + model + " --input " +
                     inputs);
      ASSERT_EQ(two.status, 0) << two.err;
      if (cmd == "logits") EXPECT_LT(max_logit_diff(two.out, one.out, inputs), 1e-5) << family;
      else EXPECT_LT(max_embed_diff(embeddings(two.out), embeddings(one.out)), 1e-5) << family;
    }
  }
}

// --- the Encoder API, init-model, save_pretrained, info ----------------------------------------------------------

TEST(Encoders, BatchedApiEqualsReferenceRows) {
  // What a prompt generator does: one padded batch through Encoder::embed, each row as the reference's.
  for (const std::string family : {"roberta", "codesage"}) {
    const auto model = make_reference_model(family, family + "api", "", base_model(family));
    const auto inputs = write_inputs(model);
    auto ref = run(kPython + ref_script(family) + " embed --model " + model + " --input " + inputs);
    ASSERT_EQ(ref.status, 0) << ref.err;
    const auto want = embeddings(ref.out);
    const auto rows = input_rows(pad_id(model));
    size_t T = 0;
    for (const auto& r : rows) T = std::max(T, r["ids"].size());
    const auto pad = pad_id(model);
    auto ids = at::full({static_cast<int64_t>(rows.size()), static_cast<int64_t>(T)}, pad, at::kLong);
    auto mask = at::zeros_like(ids);
    for (size_t i = 0; i < rows.size(); ++i)
      for (size_t t = 0; t < rows[i]["ids"].size(); ++t) {
        ids[i][t] = rows[i]["ids"][t].get<int64_t>();
        mask[i][t] = rows[i].contains("attention_mask") ? rows[i]["attention_mask"][t].get<int64_t>() : 1;
      }
    const auto enc = lopa::Encoder::load(model, lopa::ProcessGroup::single());
    EXPECT_EQ(enc.pooling(), family == "roberta" ? lopa::Pooling::First : lopa::Pooling::Mean);
    EXPECT_TRUE(enc.bidirectional());
    EXPECT_FALSE(enc.has_lm_head());
    auto got = enc.embed(ids, mask);
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{static_cast<int64_t>(rows.size()), enc.hidden_size()}));
    std::vector<std::vector<double>> have;
    for (int64_t i = 0; i < got.size(0); ++i) {
      auto row = got[i].to(at::kDouble).contiguous();
      have.emplace_back(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
    }
    EXPECT_LT(max_embed_diff(have, want), 1e-5) << family;
  }
}

TEST(Encoders, InputsEmbedsPositionsFollowTheFamily) {
  // transformers numbers inputs_embeds from padding_idx + 1 (RoBERTa) or 0 (BERT, CodeSage): for ids without a pad
  // token that is what it does for the ids, so both paths give the same states; a pad token among the ids is
  // counted differently by RoBERTa's two rules.
  for (const std::string family : {"roberta", "bert", "codesage"}) {
    const auto model = make_reference_model(family, family + "emb", "", base_model(family));
    const auto enc = lopa::Encoder::load(model, lopa::ProcessGroup::single());
    auto ids = at::tensor(std::vector<int64_t>{0, 5, 17, 42, 99, 3, 2}, at::kLong).view({1, 7});
    auto a = enc.hidden_states(ids), b = enc.hidden_states_from_embeds(enc.model().embed(ids));
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-6) << family;
    if (family == "roberta") {
      ids[0][3] = pad_id(model);
      a = enc.hidden_states(ids);
      b = enc.hidden_states_from_embeds(enc.model().embed(ids));
      EXPECT_GT((a - b).abs().max().item<double>(), 1e-3);
    }
  }
}

TEST(Encoders, PrefixKeysAndValuesActAsPrependedPositions) {
  // Prefix tuning on a masked LM (issue 16): a KV prefix of P positions is what HF's past_key_values is to
  // RobertaSelfAttention / BertSelfAttention (keys and values concatenated before the input's, positions
  // counted from P). In bidirectional attention over [E ; x] the positions of x see exactly the keys and
  // values the reference computes for E in that row, so a per-row prefix holding those gives x the full
  // run's logits (a padded row included: its pad positions stay invisible).
  for (const std::string family : {"roberta", "bert"}) {
    const auto model = make_reference_model(family, family + "pfx", "", mlm_model(family));
    const int64_t pad = pad_id(model), P = 4;
    const std::vector<int64_t> E = {family == "roberta" ? 0 : 101, 33, 44, 55};
    const std::vector<std::vector<int64_t>> xs = {{7, 8, 9, 12, 2}, {10, 11, 2, pad, pad}};
    const std::vector<std::vector<int64_t>> masks = {{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}};
    const auto dir = temp_dir(family + "pfxin");
    std::string text;
    for (size_t i = 0; i < xs.size(); ++i) {
      std::vector<int64_t> ids = E, mask(P, 1);
      ids.insert(ids.end(), xs[i].begin(), xs[i].end());
      mask.insert(mask.end(), masks[i].begin(), masks[i].end());
      text += nlohmann::json{{"ids", ids}, {"attention_mask", mask}}.dump() + "\n";
    }
    write_text(dir + "/in.jsonl", text);
    auto ref = run(kPython + ref_script(family) + " kv --model " + model + " --input " + dir + "/in.jsonl --positions " +
                   std::to_string(P) + " --out " + dir + "/kv.safetensors");
    ASSERT_EQ(ref.status, 0) << ref.err;
    const auto want = json_lines(ref.out);
    ASSERT_EQ(want.size(), xs.size());

    const auto fm = lopa::CausalLM::load(model, lopa::ProcessGroup::single());
    const auto kv = lopa::SafetensorsFile::open(dir + "/kv.safetensors");
    const int64_t T = static_cast<int64_t>(xs[0].size());
    auto ids = at::zeros({2, T}, at::kLong), mask = at::zeros({2, T}, at::kLong);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t t = 0; t < T; ++t) ids[i][t] = xs[i][t], mask[i][t] = masks[i][t];
    std::vector<at::Tensor> keys, values;
    for (int64_t l = 0; l < fm.num_layers(); ++l) {
      keys.push_back(kv.tensor("k." + std::to_string(l), at::kFloat));
      values.push_back(kv.tensor("v." + std::to_string(l), at::kFloat));
    }
    auto cache = lopa::KVCache::for_model(fm, 2, T);
    cache.set_prefix(keys, values);
    at::NoGradGuard no_grad;
    const auto pos = fm.architecture().embeds_position_ids(2, T, fm.device()) + P;
    const auto logits = fm.lm_logits(fm.forward(fm.embed(ids), mask, &cache, pos)).to(at::kDouble);
    double worst = 0;
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t t = 0; t < T; ++t) {
        if (!masks[i][t]) continue;
        const auto w = want[i]["logits"][P + t].get<std::vector<double>>();
        ASSERT_EQ(static_cast<int64_t>(w.size()), logits.size(2));
        for (size_t v = 0; v < w.size(); ++v) worst = std::max(worst, std::abs(logits[i][t][v].item<double>() - w[v]));
      }
    EXPECT_LT(worst, 1e-5) << family;
    // Not vacuous: without the prefix the same positions give other logits.
    const auto bare = fm.lm_logits(fm.forward(fm.embed(ids), mask, nullptr, pos)).to(at::kDouble);
    EXPECT_GT((bare - logits).abs().max().item<double>(), 1e-3) << family;
    // An encoder never stores its own keys (it cannot reuse them): the cache still holds the prefix only,
    // and the next batch over it sees exactly that prefix.
    EXPECT_EQ(cache.length(), 0) << family;
    const auto again = fm.lm_logits(fm.forward(fm.embed(ids), mask, &cache, pos)).to(at::kDouble);
    EXPECT_LT((again - logits).abs().max().item<double>(), 1e-9) << family;
  }
}

TEST(Encoders, InitModelInfoAndSavePretrained) {
  for (const std::string family : {"roberta", "bert", "codesage"}) {
    // lopa init-model on the bench config, read by the reference (HF names and shapes)…
    const auto dir = temp_dir(family + "init");
    auto r = run(kLopa + "init-model --config " + config_path(family + "-tiny") + " --out " + dir + "/m --seed 2");
    ASSERT_EQ(r.status, 0) << r.err;
    if (family == "codesage") expect_embed_match(family, dir + "/m");
    else expect_logits_match(family, dir + "/m");
    auto info = run(kLopa + "info --model " + dir + "/m");
    ASSERT_EQ(info.status, 0) << info.err;
    EXPECT_NE(info.out.find("encoder (bidirectional attention"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find(family == "codesage" ? "pooling mean" : "pooling first"), std::string::npos) << info.out;
    // …and a reference checkpoint saved back by lopa (HF layout: Conv1D, heads, token types) reads the same.
    const auto model = make_reference_model(family, family + "save", "--extras", mlm_model(family));
    auto m = lopa::CausalLM::load(model, lopa::ProcessGroup::single());
    m.save_pretrained(dir + "/saved");
    expect_logits_match(family, dir + "/saved");
  }
}

TEST(Encoders, DecoderEmbedsItsLastRealToken) {
  // A decoder as an encoder: its rule is the last real token's final-norm state. The reference is bench/gpt2_ref.py
  // with an identity LM head, so that its "logits" are the hidden states.
  const auto dir = temp_dir("dec");
  write_text(dir + "/config.json", read_text(config_path("gpt2-tiny")));
  auto r = run(kPython + ref_script("gpt2") + " init --config " + dir + "/config.json --out " + dir + "/m --seed 4");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto inputs = write_inputs(dir + "/m");
  auto ours = run(kLopa + "embed --model " + dir + "/m --input " + inputs);
  ASSERT_EQ(ours.status, 0) << ours.err;
  const std::string script =
      "import sys, json, torch; sys.path.insert(0, '" + std::string(LOPA_SOURCE_DIR) + "/bench'); import gpt2_ref, ref_io\n"
      "m = gpt2_ref.Model(sys.argv[1]); m.lm_head = torch.eye(m.cfg.d)\n"
      "for ids, mask in ref_io.read_jsonl(sys.argv[2]):\n"
      "    h, _ = m.forward(torch.tensor([ids]), None if mask is None else torch.tensor([mask]))\n"
      "    last = max(t for t in range(len(ids)) if mask is None or mask[t])\n"
      "    print(json.dumps({'embedding': h[0, last].tolist()}))\n";
  write_text(dir + "/last.py", script);
  auto ref = run(kPython + dir + "/last.py " + dir + "/m " + inputs);
  ASSERT_EQ(ref.status, 0) << ref.err;
  EXPECT_LT(max_embed_diff(embeddings(ours.out), embeddings(ref.out)), 1e-5);
}

// --- errors ------------------------------------------------------------------------------------------------------

TEST(Encoders, UnsupportedModelTypeNamesTheSupportedOnes) {
  const auto dir = temp_dir("unsup");
  write_text(dir + "/config.json", R"({"model_type":"xlm-roberta","vocab_size":10})");
  write_text(dir + "/model.safetensors", "");
  auto r = run(kLopa + "embed --model " + dir + " --input /dev/null");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("unsupported architecture 'xlm-roberta'"), std::string::npos) << r.err;
  for (const char* name : {"RobertaModel (roberta)", "BertForMaskedLM (bert)", "CodeSageModel (codesage)",
                           "GPT2LMHeadModel (gpt2)"})
    EXPECT_NE(r.err.find(name), std::string::npos) << r.err;
}

TEST(Encoders, BadUseGetsOneLineErrors) {
  const auto model = make_reference_model("roberta", "err", "", base_model("roberta"));
  const auto inputs = write_inputs(model);
  auto r = run(kLopa + "logits --model " + model + " --input " + inputs);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("RobertaModel is a base model without a vocabulary head"), std::string::npos) << r.err;
  r = run(kLopa + "embed --model " + model + " --input " + inputs + " --pooling max");
  EXPECT_NE(r.err.find("--pooling: unknown pooling 'max' (auto, first, mean, last)"), std::string::npos) << r.err;
  r = run(kLopa + "generate --model " + model + " --prompt-ids 0,5,6 --max-new-tokens 2");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("bidirectional encoder"), std::string::npos) << r.err;
  // Too long for the learned positions (RoBERTa's start at padding_idx + 1).
  const auto dir = temp_dir("long");
  std::vector<int64_t> ids(66, 5);
  write_text(dir + "/in.jsonl", nlohmann::json{{"ids", ids}}.dump() + "\n");
  r = run(kLopa + "embed --model " + model + " --input " + dir + "/in.jsonl");
  EXPECT_NE(r.err.find("position id 67 exceeds the model's 66 learned positions"), std::string::npos) << r.err;
}

TEST(Encoders, EncoderWithoutPoolingRuleIsAClearError) {
  // An architecture that is bidirectional but names no pooling: the default rule is none.
  struct NoRule : lopa::Architecture {
    NoRule() {
      cfg_.architecture = "SomeEncoderModel";
      cfg_.source = "x/config.json";
    }
    lopa::ModelSpec spec() const override {
      lopa::ModelSpec s;
      s.causal = false;
      return s;
    }
    at::Tensor block(const lopa::Block&, const at::Tensor& x, lopa::Attention&, lopa::Communicator&) const override {
      return x;
    }
    std::vector<std::string> default_lora_modules() const override { return {}; }
  } arch;
  EXPECT_EQ(arch.pooling(), lopa::Pooling::None);
  try {
    lopa::resolve_pooling(arch, std::nullopt);
    FAIL() << "no error";
  } catch (const lopa::Error& e) {
    EXPECT_NE(std::string(e.what()).find("x/config.json: SomeEncoderModel has no pooling rule of its own; choose one "
                                         "(--pooling first, mean or last)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(lopa::resolve_pooling(arch, lopa::Pooling::Mean), lopa::Pooling::Mean);
}
