// A byte-level BPE tokenizer (GPT-2 layout: ByteLevel pre-tokenizer and decoder, BOS template)
// made for a closed lexicon: merges are learned on the lexicon's words, bare and space-prefixed,
// until each of them is one token, so any text round-trips and lexicon text is one token a word.
// Written as Hugging Face tokenizer.json + tokenizer_config.json, read back by runtime/tokenizer.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lopa {

struct WordTokenizerFiles {
  std::string tokenizer_json, tokenizer_config_json;  // file contents
  int64_t vocab_size = 0;  // <|endoftext|> (id 0, BOS = EOS) + 256 bytes + one token per merge
};

// Deterministic in `words` (duplicates ignored). Words must be non-empty and hold no whitespace.
WordTokenizerFiles make_word_tokenizer(const std::vector<std::string>& words);

// Writes DIR/tokenizer.json and DIR/tokenizer_config.json.
void write_word_tokenizer(const WordTokenizerFiles& files, const std::string& dir);

}  // namespace lopa
