// Encoder tokenizers (BERT WordPiece, RoBERTa byte-level BPE): id-exact with Hugging Face's tokenizers on
// the shared samples and on a corpus of sentence pairs, accents, CJK beyond the BMP, control characters and
// over-long words, each in both forms — tokenizer.json and the slow files (vocab.txt; vocab.json +
// merges.txt) as transformers' converter builds them — and `lopa tokenize --add-special-tokens`.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer.h"

using lopa::Tokenizer;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kShared = LOPA_SHARED_DIR;
const std::string kTok = kShared + "/tokenizers/";

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::vector<int64_t> ids_of(const json& j) { return j.get<std::vector<int64_t>>(); }

std::string temp_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/lopa_enc_tok_XXXXXX";
    const char* d = mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    return std::string(d ? d : "/tmp");
  }();
  return dir;
}

std::string write_file(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// A directory with only the slow files of a fixture (symlinked) and the given tokenizer_config.json.
std::string slow_dir(const std::string& name, const std::string& fixture, const std::vector<std::string>& files,
                     const std::string& config) {
  const std::string dir = temp_dir() + "/" + name;
  fs::create_directories(dir);
  for (const auto& f : files) {
    const fs::path link = dir + "/" + f;
    if (!fs::exists(fs::symlink_status(link))) fs::create_symlink(kTok + fixture + "/" + f, link);
  }
  write_file(dir + "/tokenizer_config.json", config);
  return dir;
}

// bert-flags' added tokens, one per AddedToken flag (as scripts/gen_encoder_tokenizer_reference.js adds them).
json bert_flag_tokens() {
  auto mk = [](int id, const std::string& content, std::initializer_list<const char*> flags) {
    json t = {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
              {"normalized", false}, {"special", false}};
    for (const char* f : flags) t[f] = true;
    return t;
  };
  return json::array({mk(30522, "[E1]", {"lstrip", "rstrip", "special"}), mk(30523, "Hello World", {"normalized"}),
                      mk(30524, "ent", {"single_word", "normalized"}), mk(30525, "<Sep2>", {"rstrip"}),
                      mk(30526, "\xC3\x9Cn\xC3\xAF", {"normalized"})});
}

// The slow form of bert-flags: vocab.txt with the added tokens in tokenizer_config.json's added_tokens_decoder.
std::string bert_flags_config() {
  json decoder = json::object();
  for (auto t : bert_flag_tokens()) {
    const std::string id = std::to_string(t["id"].get<int>());
    t.erase("id");
    decoder[id] = t;
  }
  return json{{"do_lower_case", true}, {"added_tokens_decoder", decoder}}.dump();
}

// The fixture's tokenizer.json edited as scripts/gen_encoder_tokenizer_reference.js edits it.
std::string variant_json(const std::string& name) {
  const bool bert = name.rfind("bert", 0) == 0;
  std::ifstream in(kTok + (bert ? "bert" : "roberta") + "/tokenizer.json");
  json j = json::parse(in);
  if (name == "bert-flags") {
    for (const auto& t : bert_flag_tokens()) j["added_tokens"].push_back(t);
  } else if (bert) {
    j["normalizer"]["lowercase"] = false;
  } else {
    j["pre_tokenizer"]["add_prefix_space"] = true;
    j["post_processor"]["add_prefix_space"] = true;
  }
  return write_file(temp_dir() + "/" + name + ".json", j.dump());
}

// Every tokenizer of the reference corpus, in both forms ("fast": tokenizer.json, "slow": the slow files).
const Tokenizer& tokenizer(const std::string& name, const std::string& form) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[name + "/" + form];
  if (t) return *t;
  const bool fast = form == "fast";
  if (name == "bert" || name == "roberta") {
    t = std::make_unique<Tokenizer>(fast ? Tokenizer::from_dir(kTok + name) : Tokenizer::from_slow_dir(kTok + name));
  } else if (name == "bert-cased") {
    t = std::make_unique<Tokenizer>(
        fast ? Tokenizer::from_files(variant_json(name))
             : Tokenizer::from_slow_dir(slow_dir(name, "bert", {"vocab.txt"}, R"({"do_lower_case": false})")));
  } else if (name == "bert-flags") {
    t = std::make_unique<Tokenizer>(fast ? Tokenizer::from_files(variant_json(name))
                                         : Tokenizer::from_slow_dir(slow_dir(name, "bert", {"vocab.txt"}, bert_flags_config())));
  } else if (name == "roberta-prefix") {
    t = std::make_unique<Tokenizer>(
        fast ? Tokenizer::from_files(variant_json(name))
             : Tokenizer::from_slow_dir(slow_dir(name, "roberta", {"vocab.json", "merges.txt"},
                                                 R"({"add_prefix_space": true, "tokenizer_class": "RobertaTokenizer"})")));
  } else {
    ADD_FAILURE() << "no tokenizer " << name;
  }
  return *t;
}

struct EncoderTokenizerCorpus : ::testing::TestWithParam<std::tuple<std::string, std::string>> {};
struct EncoderTokenizerSamples : EncoderTokenizerCorpus {};

std::string param_name(const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info) {
  std::string n = std::get<0>(info.param) + "_" + std::get<1>(info.param);
  for (auto& c : n)
    if (c == '-') c = '_';
  return n;
}

// samples.jsonl (add_special_tokens=false) and samples_special.jsonl (true): ids and decoded strings.
TEST_P(EncoderTokenizerSamples, SharedSamples) {
  const auto [name, form] = GetParam();
  const Tokenizer& tok = tokenizer(name, form);
  for (const std::string file : {"samples.jsonl", "samples_special.jsonl"}) {
    const auto samples = read_jsonl(kTok + name + "/" + file);
    ASSERT_EQ(samples.size(), file == "samples.jsonl" ? 25u : 7u) << file;
    int ids_ok = 0, decoded_ok = 0;
    for (const auto& s : samples) {
      const bool special = s.value("with_special", false);
      const std::string text = s["text"];
      const auto ids = tok.encode(text, special);
      ids_ok += ids == ids_of(s["ids"]);
      EXPECT_EQ(ids, ids_of(s["ids"])) << name << "/" << form << " " << file << ": " << json(text).dump();
      const std::string decoded = tok.decode(ids_of(s["ids"]), false);
      decoded_ok += decoded == s["decoded"].get<std::string>();
      EXPECT_EQ(decoded, s["decoded"].get<std::string>()) << name << "/" << form << " " << file << ": " << json(text).dump();
    }
    std::cout << "[ids match] " << name << " " << form << " " << file << ": ids " << ids_ok << "/" << samples.size()
              << ", decoded " << decoded_ok << "/" << samples.size() << "\n";
  }
}

// The reference corpus (HF tokenizers 0.23.2 via scripts/gen_encoder_tokenizer_reference.js): single
// texts and pairs, with and without special tokens, type ids, and decoding with and without specials.
TEST_P(EncoderTokenizerCorpus, ReferenceCorpus) {
  const auto [name, form] = GetParam();
  const Tokenizer& tok = tokenizer(name, form);
  int lines = 0, pairs = 0, ok = 0, failures = 0;
  for (const auto& l : read_jsonl(LOPA_SOURCE_DIR "/tests/runtime/tokenizer/test_tokenizer_encoders_reference.jsonl")) {
    if (l["tokenizer"] != name) continue;
    ++lines;
    const std::string text = l["text"];
    const bool has_pair = l.contains("pair");
    pairs += has_pair;
    const std::string pair = has_pair ? l["pair"].get<std::string>() : std::string();
    const lopa::Encoding plain = tok.encode_full(text, has_pair ? &pair : nullptr, false);
    const lopa::Encoding special = tok.encode_full(text, has_pair ? &pair : nullptr, true);
    const auto ref_special = ids_of(l["ids_special"]);
    const bool good = plain.ids == ids_of(l["ids"]) && plain.type_ids == ids_of(l["type_ids"]) &&
                      special.ids == ref_special && special.type_ids == ids_of(l["type_ids_special"]) &&
                      tok.decode(ref_special, false) == l["decoded"].get<std::string>() &&
                      tok.decode(ref_special, true) == l["decoded_skip"].get<std::string>() &&
                      (has_pair || tok.encode(text, true) == ref_special);
    ok += good;
    if (!good && ++failures <= 10) {
      const std::string where = name + "/" + form + ": " + json(text).dump() + (has_pair ? " | " + json(pair).dump() : "");
      EXPECT_EQ(plain.ids, ids_of(l["ids"])) << where;
      EXPECT_EQ(plain.type_ids, ids_of(l["type_ids"])) << where;
      EXPECT_EQ(special.ids, ref_special) << where;
      EXPECT_EQ(special.type_ids, ids_of(l["type_ids_special"])) << where;
      EXPECT_EQ(tok.decode(ref_special, false), l["decoded"].get<std::string>()) << where;
      EXPECT_EQ(tok.decode(ref_special, true), l["decoded_skip"].get<std::string>()) << where;
    }
    // special_tokens_mask marks exactly what add_special_tokens added
    size_t added = 0;
    for (auto m : special.special_tokens_mask) added += m;
    EXPECT_EQ(added, special.ids.size() - plain.ids.size()) << name << ": " << json(text).dump();
  }
  std::cout << "[ids match] " << name << " " << form << " reference corpus: " << ok << "/" << lines << " lines ("
            << pairs << " pairs)\n";
  EXPECT_EQ(failures, 0);
  EXPECT_GE(lines, 50);
  EXPECT_GE(pairs, 2);
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, EncoderTokenizerSamples,
                         ::testing::Combine(::testing::Values("bert", "roberta"), ::testing::Values("fast", "slow")),
                         param_name);
INSTANTIATE_TEST_SUITE_P(Tokenizer, EncoderTokenizerCorpus,
                         ::testing::Combine(::testing::Values("bert", "roberta", "bert-cased", "roberta-prefix", "bert-flags"),
                                            ::testing::Values("fast", "slow")),
                         param_name);

// Hand-derived facts from the fixtures' README / PROVENANCE and transformers' classes.
TEST(EncoderTokenizer, SpecialTokenIds) {
  for (const std::string form : {"fast", "slow"}) {
    const Tokenizer& r = tokenizer("roberta", form);
    EXPECT_EQ(r.bos_id(), 0) << form;
    EXPECT_EQ(r.eos_id(), 2) << form;   // RobertaTokenizerFast's defaults: the config names none
    EXPECT_EQ(r.pad_id(), 1) << form;
    EXPECT_EQ(r.mask_id(), 50264) << form;
    EXPECT_EQ(r.vocab_size(), 50265) << form;
    EXPECT_TRUE(r.adds_bos()) << form;
    EXPECT_EQ(r.token_to_id("Hello"), 31414) << form;  // fairseq order, not GPT-2's 15496
    // <mask> takes the space before it (lstrip), the one after stays with the next word.
    EXPECT_EQ(r.encode("is <mask> here", false), r.encode("is<mask> here", false)) << form;

    const Tokenizer& b = tokenizer("bert", form);
    EXPECT_EQ(b.pad_id(), 0) << form;
    EXPECT_EQ(b.mask_id(), 103) << form;
    EXPECT_EQ(b.bos_id(), 101) << form;  // the template's [CLS]
    EXPECT_FALSE(b.eos_id()) << form;
    EXPECT_EQ(b.vocab_size(), 30522) << form;
    EXPECT_EQ(b.token_to_id("[UNK]"), 100) << form;
    EXPECT_NE(b.describe().find("WordPiece"), std::string::npos) << b.describe();
    EXPECT_NE(b.describe().find("adds 1 before / 1 after"), std::string::npos) << b.describe();
  }
}

TEST(EncoderTokenizer, WordPieceByHand) {
  const Tokenizer& b = tokenizer("bert", "fast");
  const auto unk = *b.token_to_id("[UNK]");
  // 100 code points after normalization is still a word; 101 is [UNK] whole.
  EXPECT_NE(b.encode(std::string(100, 'a'), false), std::vector<int64_t>{unk});
  EXPECT_EQ(b.encode(std::string(101, 'a'), false), std::vector<int64_t>{unk});
  // "é" is 2 bytes but one character: 100 of them (stripped to "e") are not over the limit.
  std::string e100;
  for (int i = 0; i < 100; ++i) e100 += "\xC3\xA9";
  EXPECT_EQ(b.encode(e100, false), b.encode(std::string(100, 'e'), false));
  // Continuation pieces carry "##" and decode glued on.
  const auto ids = b.encode("tokenizer", false);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(b.id_to_token(ids[0]), "token");
  EXPECT_EQ(b.id_to_token(ids[1]), "##izer");
  EXPECT_EQ(b.decode(ids, true), "tokenizer");
  // Pair type ids: [CLS] a [SEP] b [SEP] -> 0 0 0 1 1
  const auto e = b.encode_pair("a", "b");
  EXPECT_EQ(e.ids, (std::vector<int64_t>{101, *b.token_to_id("a"), 102, *b.token_to_id("b"), 102}));
  EXPECT_EQ(e.type_ids, (std::vector<int64_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(e.special_tokens_mask, (std::vector<uint8_t>{1, 0, 1, 0, 1}));
  const Tokenizer& r = tokenizer("roberta", "slow");
  const auto re = r.encode_pair("a", "b");
  EXPECT_EQ(re.ids, (std::vector<int64_t>{0, *r.token_to_id("a"), 2, 2, *r.token_to_id("b"), 2}));
  EXPECT_EQ(re.type_ids, std::vector<int64_t>(6, 0));  // RoBERTa: every type id 0
}

// The slow form reads special_tokens_map.json over tokenizer_config.json, added_tokens.json, and
// rejects what it cannot convert with one line naming the file.
TEST(EncoderTokenizer, SlowFilesConfigAndErrors) {
  const std::string dir = slow_dir("bert-extra", "bert", {"vocab.txt"}, R"({"do_lower_case": true, "mask_token": "[UNK]"})");
  write_file(dir + "/special_tokens_map.json", R"({"mask_token": "[MASK]", "additional_special_tokens": ["<ent>"]})");
  write_file(dir + "/added_tokens.json", R"({"newword": 30522})");
  const Tokenizer t = Tokenizer::from_dir(dir);
  EXPECT_EQ(t.mask_id(), 103);
  EXPECT_EQ(t.token_to_id("<ent>"), 30523);  // a special token missing from the vocab gets the next id
  EXPECT_EQ(t.token_to_id("newword"), 30522);
  EXPECT_EQ(t.encode("a <ent> newword", false),
            (std::vector<int64_t>{*t.token_to_id("a"), 30523, 30522}));
  EXPECT_EQ(t.decode(t.encode("x <ent> y", true), true), "x y");
  EXPECT_TRUE(Tokenizer::available(dir));

  auto expect_error = [](const std::string& d, const std::string& what) {
    try {
      Tokenizer::from_dir(d);
      ADD_FAILURE() << d << ": loaded without error";
    } catch (const lopa::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  };
  // A class without a converter here: not available (ids-only use still works), and loading it says why.
  const std::string t5 = slow_dir("bad-class", "bert", {"vocab.txt"}, R"({"tokenizer_class": "T5Tokenizer"})");
  EXPECT_FALSE(Tokenizer::available(t5));
  try {
    Tokenizer::from_slow_dir(t5);
    ADD_FAILURE() << "loaded without error";
  } catch (const lopa::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_class 'T5Tokenizer' has no slow-file converter"), std::string::npos)
        << e.what();
  }
  const std::string bad_merges = temp_dir() + "/bad-merges";
  fs::create_directories(bad_merges);
  fs::copy_file(kTok + "roberta/vocab.json", bad_merges + "/vocab.json", fs::copy_options::overwrite_existing);
  write_file(bad_merges + "/merges.txt", "#version: 0.2\n\xC4\xA0 t\nthree parts here\n");
  expect_error(bad_merges, bad_merges + "/merges.txt:3: a merge is two tokens");
  write_file(bad_merges + "/merges.txt", "#version: 0.2\n\xC4\xA0 t\nnot_a_token zzz\n");
  expect_error(bad_merges, "references unknown token 'not_a_token'");
  expect_error(slow_dir("no-files", "bert", {}, "{}"), "no tokenizer.json");
  EXPECT_FALSE(Tokenizer::available(temp_dir() + "/no-files"));
}

// ---- `lopa tokenize --add-special-tokens` ----

struct RunResult {
  int status;
  std::string output;
};

RunResult run(const std::string& cmd) {
  RunResult r{-1, ""};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string ids_line(const json& ids, const json* type_ids = nullptr) {
  auto list = [](const json& a) {
    std::string s = "[";
    for (size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + std::to_string(a[i].get<int64_t>());
    return s + "]";
  };
  std::string line = "{\"ids\": " + list(ids);
  if (type_ids) line += ", \"token_type_ids\": " + list(*type_ids);
  return line + "}\n";
}

TEST(TokenizeCli, AddSpecialTokensWithPairs) {
  // bert's samples_special.jsonl through the CLI, then reference-corpus pairs with and without the flag.
  for (const std::string name : {"bert", "roberta"}) {
    std::string input, expected, expected_plain;
    for (const auto& s : read_jsonl(kTok + name + "/samples_special.jsonl")) {
      input += json{{"text", s["text"]}}.dump() + "\n";
      expected += ids_line(s["ids"]);
    }
    int n = 0;
    for (const auto& l : read_jsonl(LOPA_SOURCE_DIR "/tests/runtime/tokenizer/test_tokenizer_encoders_reference.jsonl")) {
      if (l["tokenizer"] != name || !l.contains("pair") || ++n > 12) continue;
      input += json{{"text", l["text"]}, {"pair", l["pair"]}}.dump() + "\n";
      expected += ids_line(l["ids_special"], &l["type_ids_special"]);
    }
    const std::string path = write_file(temp_dir() + "/cli_" + name + ".jsonl", input);
    const auto r = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + kTok + name + " --input " + path +
                       " --add-special-tokens");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output, expected) << name;
  }
  // --text / --pair, and without the flag a pair still gets its type ids (RoBERTa: all 0)
  const auto r = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + kTok + "bert --text 'a' --pair 'b' --add-special-tokens");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "{\"ids\": [101, 1037, 102, 1038, 102], \"token_type_ids\": [0, 0, 0, 1, 1]}\n");
  const auto r2 = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + kTok + "bert --text 'a' --pair 'b'");
  EXPECT_EQ(r2.output, "{\"ids\": [1037, 1038], \"token_type_ids\": [0, 1]}\n");
  // a slow-files directory works the same
  const std::string slow = slow_dir("cli-slow", "bert", {"vocab.txt"}, R"({"do_lower_case": true})");
  const auto r3 = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + slow + " --text 'A' --add-special-tokens");
  EXPECT_EQ(r3.output, "{\"ids\": [101, 1037, 102]}\n") << r3.output;
  // a non-string pair names the file and line
  const std::string bad = write_file(temp_dir() + "/cli_bad_pair.jsonl", "{\"text\": \"a\"}\n{\"text\": \"a\", \"pair\": 3}\n");
  const auto r4 = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + kTok + "bert --input " + bad);
  EXPECT_NE(r4.status, 0);
  EXPECT_NE(r4.output.find(bad + ":2:"), std::string::npos) << r4.output;
}

}  // namespace
