// WordPiece::tokenize of HF tokenizers (models/wordpiece/mod.rs), byte offsets and all.
#include "runtime/tokenizer/wordpiece.h"

#include "runtime/base/error.h"

namespace lopa {

namespace {

size_t count_chars(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

void WordPieceModel::tokenize(const std::unordered_map<std::string, int32_t>& vocab, const std::string& word,
                              std::vector<int32_t>& out) const {
  if (word.empty()) return;
  auto unk = [&] {
    auto it = vocab.find(unk_token);
    LOPA_CHECK(it != vocab.end(), path, ": WordPiece needs its unk_token '", unk_token, "', which is not in the vocab");
    out.push_back(it->second);
  };
  if (count_chars(word) > max_input_chars_per_word) return unk();
  const size_t first = out.size();
  std::string piece;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    bool found = false;
    while (start < end) {
      piece.assign(start > 0 ? continuing_subword_prefix : std::string());
      piece.append(word, start, end - start);
      auto it = vocab.find(piece);
      if (it != vocab.end()) {
        out.push_back(it->second);
        found = true;
        break;
      }
      // drop the last code point of the candidate (the input is valid UTF-8)
      do --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (!found) {
      out.resize(first);
      return unk();
    }
    start = end;
  }
}

}  // namespace lopa
