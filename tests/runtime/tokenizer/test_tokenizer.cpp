// Tokenizer tests: every fixture sample id for id (references from Hugging Face's tokenizers),
// decoding round trips, BOS handling, malformed tokenizer.json, and the `lopa tokenize` CLI.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "runtime/base/error.h"
#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode.h"

using lopa::Tokenizer;
using json = nlohmann::json;

namespace {

const std::string kShared = LOPA_SHARED_DIR;

const Tokenizer& tokenizer(const std::string& dir) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;  // the big files load once per run
  auto& t = cache[dir];
  if (!t) t = std::make_unique<Tokenizer>(Tokenizer::from_dir(kShared + "/" + dir));
  return *t;
}

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

class FixtureSamples : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureSamples, EncodeAndDecodeEveryLine) {
  const std::string name = GetParam();
  const Tokenizer& tok = tokenizer("tokenizers/" + name);
  const auto samples = read_jsonl(kShared + "/tokenizers/" + name + "/samples.jsonl");
  ASSERT_EQ(samples.size(), 25u);
  for (const auto& s : samples) {
    const std::string text = s["text"];
    EXPECT_EQ(tok.encode(text, false), ids_of(s["ids"])) << name << ": " << text;
    EXPECT_EQ(tok.decode(ids_of(s["ids"]), false), s["decoded"].get<std::string>()) << name << ": " << text;
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, FixtureSamples, ::testing::Values("gpt2", "llama2", "llama3", "qwen3", "codegen"));

TEST(Tokenizer, CodegenSamplesWithSpecialTokens) {
  // encode(text, add_special_tokens=true): codegen's ByteLevel post-processor adds nothing, and a literal
  // <|endoftext|> (special, not normalized) is still its id 50256, spaces around it kept as text.
  const Tokenizer& tok = tokenizer("tokenizers/codegen");
  const auto samples = read_jsonl(kShared + "/tokenizers/codegen/samples_special.jsonl");
  ASSERT_EQ(samples.size(), 6u);
  for (const auto& s : samples) {
    ASSERT_TRUE(s["with_special"].get<bool>());
    const std::string text = s["text"];
    EXPECT_EQ(tok.encode(text, true), ids_of(s["ids"])) << text;
    EXPECT_EQ(tok.decode(ids_of(s["ids"]), false), s["decoded"].get<std::string>()) << text;
  }
}

TEST(Tokenizer, CodegenWhitespaceAddedTokens) {
  const Tokenizer& tok = tokenizer("tokenizers/codegen");
  EXPECT_EQ(tok.vocab_size(), 50295);
  EXPECT_FALSE(tok.adds_bos());
  // From the fixture's PROVENANCE: 31..2 spaces are 50257..50286, 9..2 tabs 50287..50294.
  for (int n = 2; n <= 31; ++n) EXPECT_EQ(tok.token_to_id(std::string(n, ' ')), 50288 - n) << n;
  for (int n = 2; n <= 9; ++n) EXPECT_EQ(tok.token_to_id(std::string(n, '\t')), 50296 - n) << n;
  // Leftmost-longest: 40 spaces are 31 + 9; 11 tabs are 9 + 2; one space or tab is GPT-2's own (220, 197).
  EXPECT_EQ(tok.encode(std::string(40, ' '), false), (std::vector<int64_t>{50257, 50279}));
  EXPECT_EQ(tok.encode(std::string(11, '\t'), false), (std::vector<int64_t>{50287, 50294}));
  EXPECT_EQ(tok.encode(" \t", false), (std::vector<int64_t>{220, 197}));
  // Decoding an added run gives the run back (the ByteLevel decoder takes a token outside its map as raw bytes).
  EXPECT_EQ(tok.decode({198, 50284, 50294}, false), "\n    \t\t");
}

TEST(Tokenizer, Stories260KTokenizeLines) {
  const Tokenizer& tok = tokenizer("models/stories260K");
  int n = 0;
  for (const auto& s : read_jsonl(kShared + "/models/stories260K/samples.jsonl")) {
    if (s.value("kind", "") != "tokenize") continue;
    ++n;
    const std::string text = s["text"];
    const auto ids = ids_of(s["ids"]);
    EXPECT_EQ(tok.encode(text, false), ids) << text;
    // The provenance: decoding (with BOS, skipping special tokens) gives every string back.
    std::vector<int64_t> with_bos{1};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    EXPECT_EQ(tok.decode(with_bos, true), text) << text;
    EXPECT_EQ(tok.encode(text, true), with_bos) << text;
  }
  EXPECT_GE(n, 10);
}

TEST(Tokenizer, Stories260KGreedyPromptIds) {
  // The greedy sample's prompt_ids are BOS + the prompt, as run.c and HF build them.
  const Tokenizer& tok = tokenizer("models/stories260K");
  for (const auto& s : read_jsonl(kShared + "/models/stories260K/samples.jsonl"))
    if (s.value("kind", "") == "greedy") {
      EXPECT_EQ(tok.encode(s["prompt"], true), ids_of(s["prompt_ids"]));
    }
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_FALSE(tok.pad_id());
  EXPECT_TRUE(tok.adds_bos());
  EXPECT_EQ(tok.vocab_size(), 512);
}

TEST(Tokenizer, SpecialTokenIdsAndBos) {
  const Tokenizer& gpt2 = tokenizer("tokenizers/gpt2");
  EXPECT_EQ(gpt2.vocab_size(), 50257);
  EXPECT_FALSE(gpt2.adds_bos());  // ByteLevel post-processor, no config flags
  EXPECT_EQ(gpt2.encode("Hello", true), gpt2.encode("Hello", false));

  const Tokenizer& llama2 = tokenizer("tokenizers/llama2");
  EXPECT_EQ(llama2.bos_id(), 1);  // bos_token given as an AddedToken object
  EXPECT_EQ(llama2.eos_id(), 2);
  EXPECT_TRUE(llama2.adds_bos());
  // "▁Hello" is 15043 in Llama 2 (the PROVENANCE's check against Mistral's 22557).
  EXPECT_EQ(llama2.encode("Hello", true), (std::vector<int64_t>{1, 15043}));
  // A literal <s> in the text is the special token; add_special_tokens adds one more at the front only.
  EXPECT_EQ(llama2.encode("<s>Hello", true), (std::vector<int64_t>{1, 1, 15043}));

  const Tokenizer& llama3 = tokenizer("tokenizers/llama3");
  EXPECT_EQ(llama3.vocab_size(), 128256);
  EXPECT_EQ(llama3.bos_id(), 128000);
  EXPECT_EQ(llama3.eos_id(), 128001);
  EXPECT_FALSE(llama3.adds_bos());  // the original release's ByteLevel post-processor adds nothing
  EXPECT_EQ(llama3.token_to_id("<|eot_id|>"), 128009);

  const Tokenizer& qwen3 = tokenizer("tokenizers/qwen3");
  EXPECT_EQ(qwen3.vocab_size(), 151669);
  EXPECT_FALSE(qwen3.bos_id());  // bos_token null
  EXPECT_EQ(qwen3.eos_id(), 151645);
  EXPECT_EQ(qwen3.pad_id(), 151643);
  EXPECT_FALSE(qwen3.adds_bos());
  // <think> is an added, non-special token: kept by skip_special_tokens; <|im_end|> is dropped.
  EXPECT_EQ(qwen3.decode({151667, 151645}, true), "<think>");
  EXPECT_EQ(qwen3.decode({151667, 151645}, false), "<think><|im_end|>");
}

TEST(Tokenizer, GlueLm8MBosOnceAndIds) {
  const Tokenizer& tok = tokenizer("models/glue-lm-8M");
  EXPECT_EQ(tok.vocab_size(), 4096);
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 0);
  EXPECT_TRUE(tok.adds_bos());
  // Hand-derived from the PROVENANCE: ids 1..256 are the GPT-2 byte symbols, sorted by code point: a byte b in '!'..'~' has id b - 32, the 188 printable bytes come first, and the
  // non-printable byte k-th in order maps to U+0100 + k with id 189 + k: space (k = 32) is "Ġ" = 221.
  ASSERT_EQ(tok.token_to_id("a"), 'a' - 32);
  ASSERT_EQ(tok.token_to_id("\xC4\xA0"), 221);
  for (const std::string text : {"the movie is", "A man is", "def is_prime(n):", "<|endoftext|>x y"}) {
    const auto plain = tok.encode(text, false);
    const auto with = tok.encode(text, true);
    ASSERT_EQ(with.size(), plain.size() + 1) << text;  // BOS once, from the template (and not again from the config)
    EXPECT_EQ(with[0], 0);
    EXPECT_EQ(std::vector<int64_t>(with.begin() + 1, with.end()), plain);
    EXPECT_EQ(tok.decode(with, true), text == std::string("<|endoftext|>x y") ? "x y" : text);
  }
  EXPECT_EQ(tok.encode("<|endoftext|>x y", false)[0], 0);
}

TEST(Tokenizer, EmptyText) {
  for (const char* name : {"gpt2", "llama2", "llama3", "qwen3", "codegen"}) {
    EXPECT_TRUE(tokenizer(std::string("tokenizers/") + name).encode("", false).empty()) << name;
    EXPECT_EQ(tokenizer(std::string("tokenizers/") + name).decode({}, false), "") << name;
  }
}

TEST(Tokenizer, InvalidUtf8IsAnError) {
  EXPECT_THROW(tokenizer("tokenizers/gpt2").encode("ab\xFF", false), lopa::Error);
}

TEST(Unicode, Classes) {
  using namespace lopa::unicode;
  EXPECT_TRUE(is_letter(U'é'));
  EXPECT_TRUE(is_letter(0x65E5));  // 日
  EXPECT_FALSE(is_letter('1'));
  EXPECT_TRUE(is_number(0x0663));  // ARABIC-INDIC DIGIT THREE (Nd)
  EXPECT_TRUE(is_number(0x00BD));  // ½ (No)
  EXPECT_TRUE(is_whitespace(0x0085));
  EXPECT_TRUE(is_whitespace(0x3000));
  EXPECT_FALSE(is_whitespace(0xFEFF));
  EXPECT_FALSE(is_whitespace(0x001C));  // Python's isspace() says yes; White_Space says no
}

TEST(Unicode, NfcComposesAndKeepsExclusions) {
  using lopa::unicode::nfc;
  EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                      // e + U+0301 → é
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // ᄀ + ᅡ → 가 (Hangul)
  EXPECT_EQ(nfc("\xE0\xA5\x98"), "\xE0\xA4\x95\xE0\xA4\xBC");  // U+0958 is a composition exclusion
  EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                  // Å (U+212B, singleton) → U+00C5
  // a + U+0323 (ccc 220) + U+0302 (ccc 230), given in the other order: reorder, then compose fully
  EXPECT_EQ(nfc("a\xCC\x82\xCC\xA3"), "\xE1\xBA\xAD");  // ậ
}

TEST(Unicode, LossyUtf8) {
  using lopa::unicode::from_utf8_lossy;
  EXPECT_EQ(from_utf8_lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");        // truncated 4-byte: one U+FFFD
  EXPECT_EQ(from_utf8_lossy("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // two invalid bytes: two
}

}  // namespace

namespace {

std::string write_flags_tokenizer();
std::string write_codegen_flags_tokenizer();
std::string write_metaspace_tokenizer(const std::string& scheme, bool split);

// Strings over every character class the pre-tokenizers distinguish (Unicode letters/digits of many
// scripts, White_Space variants, combining marks, emoji, whitespace runs, special-token strings
// inside text, long words), and for codegen a corpus of indented code and space/tab/CRLF runs,
// encoded by Hugging Face's Rust tokenizers 0.23.2 (its Node binding) with
// scripts/gen_tokenizer_reference.js.
TEST(Tokenizer, AgreesWithHuggingFaceOnArbitraryText) {
  const auto lines = read_jsonl(LOPA_SOURCE_DIR "/tests/runtime/tokenizer/test_tokenizer_reference.jsonl");
  ASSERT_GT(lines.size(), 1600u);
  const std::map<std::string, std::string> dirs = {
      {"gpt2", "tokenizers/gpt2"},           {"llama2", "tokenizers/llama2"},
      {"llama3", "tokenizers/llama3"},       {"qwen3", "tokenizers/qwen3"},
      {"stories260K", "models/stories260K"}, {"glue-lm-8M", "models/glue-lm-8M"},
      {"codegen", "tokenizers/codegen"}};
  std::map<std::string, Tokenizer> variants;
  variants.emplace("stories260K+flags", Tokenizer::from_files(write_flags_tokenizer()));
  variants.emplace("codegen+flags", Tokenizer::from_files(write_codegen_flags_tokenizer()));
  variants.emplace("llama2+metaspace-first", Tokenizer::from_files(write_metaspace_tokenizer("first", false)));
  variants.emplace("llama2+metaspace-always-split", Tokenizer::from_files(write_metaspace_tokenizer("always", true)));
  int failures = 0;
  std::map<std::string, int> per_tokenizer;
  for (const auto& l : lines) {
    ++per_tokenizer[l["tokenizer"]];
    auto v = variants.find(l["tokenizer"]);
    const Tokenizer& tok = v != variants.end() ? v->second : tokenizer(dirs.at(l["tokenizer"]));
    const auto ids = ids_of(l["ids"]);
    if (l.value("kind", "") == "decode") {
      const std::string where = l["tokenizer"].get<std::string>() + ": decode " + l["ids"].dump();
      EXPECT_EQ(tok.decode(ids, false), l["decoded"].get<std::string>()) << where;
      EXPECT_EQ(tok.decode(ids, true), l["decoded_skip"].get<std::string>()) << where;
      continue;
    }
    const std::string text = l["text"];
    const std::string where = l["tokenizer"].get<std::string>() + ": " + l["text"].dump();
    bool ok = true;
    ok &= tok.encode(text, false) == ids;
    ok &= tok.encode(text, true) == ids_of(l["ids_special"]);
    ok &= tok.decode(ids, false) == l["decoded"].get<std::string>();
    ok &= tok.decode(ids, true) == l["decoded_skip"].get<std::string>();
    if (!ok && ++failures <= 20) {
      EXPECT_EQ(tok.encode(text, false), ids) << where;
      EXPECT_EQ(tok.encode(text, true), ids_of(l["ids_special"])) << where;
      EXPECT_EQ(tok.decode(ids, false), l["decoded"].get<std::string>()) << where;
      EXPECT_EQ(tok.decode(ids, true), l["decoded_skip"].get<std::string>()) << where;
    }
  }
  EXPECT_EQ(failures, 0);
  // Every tokenizer and variant has its block (a generator change cannot silently drop one).
  for (const auto& [name, dir] : dirs) EXPECT_GT(per_tokenizer[name], 60) << name;
  for (const auto& [name, tok] : variants) EXPECT_GT(per_tokenizer[name], 30) << name;
  EXPECT_GT(per_tokenizer["codegen"], 600);  // the code/whitespace corpus
}

}  // namespace

namespace {

std::string temp_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/lopa_tok_XXXXXX";
    const char* d = mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    return std::string(d ? d : "/tmp");
  }();
  return dir;
}

std::string write_file(const std::string& name, const std::string& content) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

json small_tokenizer_json() {
  std::ifstream in(kShared + "/models/stories260K/tokenizer.json");
  return json::parse(in);
}

// Loading `content` must fail with one line that names the file and contains `problem`.
void expect_load_error(const std::string& name, const std::string& content, const std::string& problem) {
  const std::string path = write_file(name, content);
  try {
    Tokenizer::from_files(path);
    ADD_FAILURE() << name << ": loaded without error";
  } catch (const lopa::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(problem), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

// stories260K's tokenizer.json plus added tokens with each matching flag (lstrip, rstrip,
// single_word, normalized), as scripts/gen_tokenizer_reference.js builds it for the reference.
std::string write_flags_tokenizer() {
  json j = small_tokenizer_json();
  auto mk = [](int id, const std::string& content, const char* flag, bool special) {
    json t = {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
              {"normalized", false}, {"special", special}};
    if (flag) t[flag] = true;
    return t;
  };
  j["added_tokens"].push_back(mk(512, "[MASK]", "lstrip", true));
  j["added_tokens"].push_back(mk(513, "<sep>", "rstrip", true));
  j["added_tokens"].push_back(mk(514, "cat", "single_word", false));
  j["added_tokens"].push_back(mk(515, "\xE2\x96\x81" "dog", "normalized", false));
  json both = mk(516, "<both>", "lstrip", false);
  both["rstrip"] = true;
  j["added_tokens"].push_back(both);
  return write_file("stories260K_flags_tokenizer.json", j.dump());
}

// codegen's tokenizer.json plus added tokens with each flag, matched raw (normalized: false) or with
// the whitespace runs (normalized: true), as scripts/gen_tokenizer_reference.js builds it.
std::string write_codegen_flags_tokenizer() {
  std::ifstream in(kShared + "/tokenizers/codegen/tokenizer.json");
  json j = json::parse(in);
  auto mk = [](int id, const std::string& content, std::initializer_list<const char*> flags) {
    json t = {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
              {"normalized", false}, {"special", false}};
    for (const char* f : flags) t[f] = true;
    return t;
  };
  for (json t : {mk(50295, "<R>", {"rstrip", "special"}), mk(50296, "<Rn>", {"rstrip", "normalized"}),
                 mk(50297, "<L>", {"lstrip", "normalized"}), mk(50298, "<Lr>", {"lstrip", "special"}),
                 mk(50299, "foo_bar", {"single_word", "normalized"}),
                 mk(50300, "<both>", {"lstrip", "rstrip", "normalized"}), mk(50301, " dog", {"normalized"})})
    j["added_tokens"].push_back(t);
  return write_file("codegen_flags_tokenizer.json", j.dump());
}

// llama2's tokenizer.json with the Metaspace pre-tokenizer and decoder of newer Llama/Mistral files.
std::string write_metaspace_tokenizer(const std::string& scheme, bool split) {
  std::ifstream in(kShared + "/tokenizers/llama2/tokenizer.json");
  json j = json::parse(in);
  const json meta = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", scheme}, {"split", split}};
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = meta;
  j["decoder"] = {{"type", "Sequence"}, {"decoders", {meta, {{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}};
  return write_file("llama2_metaspace_" + scheme + "_" + (split ? "split" : "whole") + ".json", j.dump());
}

TEST(TokenizerErrors, MalformedTokenizerJson) {
  const json good = small_tokenizer_json();
  ASSERT_NO_THROW(Tokenizer::from_files(write_file("good.json", good.dump())));

  expect_load_error("truncated.json", good.dump().substr(0, 500), "invalid JSON");
  expect_load_error("array.json", "[1, 2]", "not a JSON object");
  json j = good;
  j.erase("model");
  expect_load_error("no_model.json", j.dump(), "no \"model\"");
  j = good;
  j["model"]["type"] = "Foo";
  expect_load_error("unknown_model.json", j.dump(), "unsupported model type 'Foo'");
  j = good;
  j["model"]["type"] = "WordLevel";
  expect_load_error("wordlevel.json", j.dump(), "unsupported model type 'WordLevel'");
  j = good;
  j["model"].erase("vocab");
  expect_load_error("no_vocab.json", j.dump(), "no \"vocab\"");
  j = good;
  j["pre_tokenizer"] = {{"type", "Frobnicate"}};
  expect_load_error("unknown_pretok.json", j.dump(), "unsupported pre_tokenizer type 'Frobnicate'");
  j = good;
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\d+"}}}, {"behavior", "Isolated"}, {"invert", false}};
  expect_load_error("unknown_regex.json", j.dump(), "unsupported Split regex");
  j = good;
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "Squash"}}}}};
  expect_load_error("unknown_normalizer.json", j.dump(), "unsupported normalizer type 'Squash'");
  j = good;
  j["decoder"] = {{"type", "Mystery"}};
  expect_load_error("unknown_decoder.json", j.dump(), "unsupported decoder type 'Mystery'");
  j = good;
  j["model"]["merges"].push_back("\xE2\x96\x81t nosuchtoken");
  expect_load_error("bad_merge.json", j.dump(), "references unknown token 'nosuchtoken'");
  j = good;
  j["model"]["merges"].push_back("ab");
  expect_load_error("merge_no_space.json", j.dump(), "not two tokens");
  j = good;
  j["model"]["merges"].push_back(json::array({"a", 3}));
  expect_load_error("merge_bad_pair.json", j.dump(), "neither");
  j = good;
  j["model"]["vocab"]["bad"] = "seven";
  expect_load_error("bad_vocab_id.json", j.dump(), "vocab entry 'bad'");
  j = good;
  j["added_tokens"][0].erase("id");
  expect_load_error("added_no_id.json", j.dump(), "malformed added token");
  j = good;
  j["post_processor"] = {{"type", "Magic"}};
  expect_load_error("unknown_post.json", j.dump(), "unsupported post_processor type 'Magic'");
  j = good;
  j["model"]["unk_token"] = "<nope>";
  expect_load_error("bad_unk.json", j.dump(), "unk_token '<nope>'");
}

TEST(TokenizerErrors, MissingFilesAndBadConfig) {
  try {
    Tokenizer::from_dir(temp_dir() + "/nowhere");
    ADD_FAILURE() << "no error";
  } catch (const lopa::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer.json"), std::string::npos) << e.what();
  }
  const std::string tj = write_file("ok.json", small_tokenizer_json().dump());
  const std::string cfg = write_file("bad_config.json", "{\"bos_token\": ");
  try {
    Tokenizer::from_files(tj, cfg);
    ADD_FAILURE() << "no error";
  } catch (const lopa::Error& e) {
    EXPECT_NE(std::string(e.what()).find(cfg), std::string::npos) << e.what();
  }
}

// ---- `lopa tokenize` ----

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

TEST(TokenizeCli, InputFileGivesOneIdsLinePerLine) {
  const auto samples = read_jsonl(kShared + "/tokenizers/qwen3/samples.jsonl");
  std::string input, expected;
  for (const auto& s : samples) {
    input += json{{"text", s["text"]}}.dump() + "\n";
    std::string line = "{\"ids\": [";
    for (size_t i = 0; i < s["ids"].size(); ++i) line += (i ? ", " : "") + std::to_string(s["ids"][i].get<int64_t>());
    expected += line + "]}\n";
  }
  const std::string path = write_file("cli_input.jsonl", input);
  const auto r = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + kShared + "/tokenizers/qwen3 --input " + path);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, expected);
  // Each line is JSON with the reference ids.
  std::istringstream lines(r.output);
  std::string line;
  size_t k = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(k, samples.size());
    EXPECT_EQ(json::parse(line)["ids"], samples[k++]["ids"]);
  }
  EXPECT_EQ(k, samples.size());
}

TEST(TokenizeCli, TextOptionAndModelDir) {
  // stories260K's first tokenize sample, from a model directory; no BOS is added.
  const auto r = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + kShared + "/models/stories260K --text 'Lily'\"'\"'s mom'");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "{\"ids\": [317, 439, 419, 357]}\n");
}

TEST(TokenizeCli, MalformedLineNamesFileAndLine) {
  const std::string path = write_file("cli_bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": 3}\n");
  const auto r = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + kShared + "/tokenizers/gpt2 --input " + path);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find(path + ":2:"), std::string::npos) << r.output;
  const std::string path2 = write_file("cli_bad2.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"unterminated\n");
  const auto r2 = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + kShared + "/tokenizers/gpt2 --input " + path2);
  EXPECT_NE(r2.status, 0);
  EXPECT_NE(r2.output.find(path2 + ":2: invalid JSON"), std::string::npos) << r2.output;
  const auto r3 = run(std::string(LOPA_BIN) + " tokenize --tokenizer " + temp_dir() + " --text hi");
  EXPECT_NE(r3.status, 0);
  EXPECT_NE(r3.output.find("no tokenizer.json"), std::string::npos) << r3.output;
}

}  // namespace
