// Fast reading of a tokenizer.json: a SAX pass that builds the JSON tree for everything except the
// BPE model's "vocab" and "merges" (hundreds of thousands of entries in Llama 3 / Qwen files),
// which it streams into flat vectors instead. Errors are one-line lopa::Error naming the file.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace lopa {

struct TokenizerJson {
  nlohmann::json tree;  // the file without model.vocab / model.merges
  bool has_vocab = false, has_merges = false;
  std::vector<std::pair<std::string, int64_t>> vocab;  // in file order
  // Each merge as written: one "a b" string (second empty, is_pair false) or an ["a", "b"] pair.
  struct Merge {
    std::string first, second;
    bool is_pair;
  };
  std::vector<Merge> merges;
};

TokenizerJson read_tokenizer_json(const std::string& path);

}  // namespace lopa
