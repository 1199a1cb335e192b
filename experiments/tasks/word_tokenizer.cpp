#include "experiments/tasks/word_tokenizer.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/base/error.h"
#include "runtime/tokenizer/pretokenize.h"

namespace lopa {

namespace {

using Symbols = std::vector<std::string>;  // a word as its current BPE symbols (byte-level chars)

Symbols byte_chars(const std::string& s) {
  Symbols out;
  for (unsigned char c : s) out.push_back(pretok::byte_to_char(c));
  return out;
}

}  // namespace

WordTokenizerFiles make_word_tokenizer(const std::vector<std::string>& words) {
  // Each word bare (text start) and after a space (GPT-2's pre-tokenizer keeps the space in front).
  std::set<std::string> forms;
  for (const auto& w : words) {
    LOPA_CHECK(!w.empty() && w.find_first_of(" \t\n\r") == std::string::npos, "word tokenizer: bad word '", w, "'");
    forms.insert(w);
    forms.insert(" " + w);
  }
  std::vector<Symbols> corpus;
  for (const auto& f : forms) corpus.push_back(byte_chars(f));

  // Vocabulary: the special token, the 256 byte chars in byte order, then merged symbols.
  nlohmann::ordered_json vocab;
  int64_t next_id = 0;
  vocab["<|endoftext|>"] = next_id++;
  for (int b = 0; b < 256; ++b) vocab[pretok::byte_to_char(static_cast<uint8_t>(b))] = next_id++;
  std::vector<std::string> merges;
  // Classic BPE training: merge the most frequent adjacent pair (ties: the smallest pair) everywhere,
  // until no word has two symbols. Encoding a word of the lexicon then replays its merges exactly.
  for (;;) {
    std::map<std::pair<std::string, std::string>, int64_t> counts;
    for (const auto& w : corpus)
      for (size_t i = 0; i + 1 < w.size(); ++i) ++counts[{w[i], w[i + 1]}];
    if (counts.empty()) break;
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it)
      if (it->second > best->second) best = it;
    const auto [a, b] = best->first;
    const std::string ab = a + b;
    merges.push_back(a + " " + b);
    if (!vocab.contains(ab)) vocab[ab] = next_id++;
    for (auto& w : corpus) {
      Symbols out;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) out.push_back(ab), ++i;
        else out.push_back(w[i]);
      }
      w.swap(out);
    }
  }

  const nlohmann::ordered_json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  const nlohmann::ordered_json eot = {{"id", "<|endoftext|>"}, {"type_id", 0}};
  nlohmann::ordered_json tj;
  tj["version"] = "1.0";
  tj["truncation"] = nullptr;
  tj["padding"] = nullptr;
  tj["added_tokens"] = nlohmann::ordered_json::array(
      {{{"id", 0}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
        {"normalized", false}, {"special", true}}});
  tj["normalizer"] = nullptr;
  tj["pre_tokenizer"] = byte_level;
  tj["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", eot}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair",
       {{{"SpecialToken", eot}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"SpecialToken", eot}},
        {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens",
       {{"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", {0}}, {"tokens", {"<|endoftext|>"}}}}}}};
  tj["decoder"] = byte_level;
  tj["model"] = {{"type", "BPE"},         {"dropout", nullptr},     {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                 {"fuse_unk", false},     {"byte_fallback", false}, {"ignore_merges", false},
                 {"vocab", vocab},        {"merges", merges}};

  nlohmann::ordered_json cfg = {
      {"tokenizer_class", "PreTrainedTokenizerFast"},
      {"bos_token", "<|endoftext|>"},
      {"eos_token", "<|endoftext|>"},
      {"unk_token", nullptr},
      {"pad_token", nullptr},
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"add_prefix_space", false},
      {"model_max_length", 512},
      {"clean_up_tokenization_spaces", false},
      {"added_tokens_decoder",
       {{"0",
         {{"content", "<|endoftext|>"}, {"lstrip", false}, {"normalized", false}, {"rstrip", false},
          {"single_word", false}, {"special", true}}}}}};
  WordTokenizerFiles f;
  f.tokenizer_json = tj.dump(1);
  f.tokenizer_config_json = cfg.dump(2);
  f.vocab_size = next_id;
  return f;
}

void write_word_tokenizer(const WordTokenizerFiles& files, const std::string& dir) {
  for (const auto& [name, text] : {std::pair<std::string, const std::string&>{"tokenizer.json", files.tokenizer_json},
                                   {"tokenizer_config.json", files.tokenizer_config_json}}) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    LOPA_CHECK(out, dir, "/", name, ": cannot write");
    out << text << "\n";
    LOPA_CHECK(out.good(), dir, "/", name, ": write failed");
  }
}

}  // namespace lopa
