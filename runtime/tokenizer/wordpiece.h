// The WordPiece model of Hugging Face tokenizers: greedy longest-match-first over the vocab, with the
// continuing-subword prefix ("##") on every piece after the first; a word longer than
// max_input_chars_per_word code points, or one the vocab cannot cover, is the unk token alone.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace lopa {

struct WordPieceModel {
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  size_t max_input_chars_per_word = 100;
  std::string path;  // for the error when unk_token is needed but missing from the vocab

  void tokenize(const std::unordered_map<std::string, int32_t>& vocab, const std::string& word,
                std::vector<int32_t>& out) const;
};

}  // namespace lopa
