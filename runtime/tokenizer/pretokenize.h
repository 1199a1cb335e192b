// Pre-tokenization of Hugging Face tokenizer.json: the Split-regex patterns of GPT-2, Llama 3 and
// Qwen2/3 as hand-written matchers over code points (std::regex has no \p{L}/\p{N}), the ByteLevel
// byte→char mapping, Metaspace, Digits, WhitespaceSplit and BertPreTokenizer, and Sequence of them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lopa::pretok {

// The regexes seen in real tokenizer.json files, recognised by their exact pattern text.
enum class SplitRegex {
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kLlama3,  // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,   // as kLlama3 with \p{N} (single digits)
};
std::optional<SplitRegex> recognize_regex(const std::string& pattern);

// Byte spans [begin, end) of the successive (leftmost, non-overlapping) matches of `re` in `text`
// (valid UTF-8), as Oniguruma's find_iter returns them.
std::vector<std::pair<size_t, size_t>> find_matches(SplitRegex re, const std::string& text);

// GPT-2's reversible byte→printable-char map: the UTF-8 text of the char standing for each byte.
const std::string& byte_to_char(uint8_t b);
// The inverse: the byte a code point stands for, or -1.
int char_to_byte(uint32_t cp);

// How a Split keeps the matched delimiters (HF SplitDelimiterBehavior).
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Piece {
  std::string text;
  bool at_origin;  // starts at byte 0 of the original input (Metaspace prepend_scheme "first")
};

struct PreTokenizer {
  enum class Kind { kSequence, kByteLevel, kSplitRegex, kSplitString, kMetaspace, kDigits, kWhitespaceSplit, kBert };
  Kind kind = Kind::kSequence;
  std::vector<PreTokenizer> children;  // kSequence
  // kByteLevel
  bool add_prefix_space = false;
  bool use_regex = true;
  // kSplitRegex / kSplitString
  SplitRegex regex = SplitRegex::kGpt2;
  std::string literal;
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  // kMetaspace
  std::string replacement = "\xE2\x96\x81";
  enum class Prepend { kAlways, kFirst, kNever } prepend = Prepend::kAlways;
  bool split = true;
  // kDigits
  bool individual_digits = false;

  // Splits (and for ByteLevel/Metaspace, rewrites) every piece, in place.
  void apply(std::vector<Piece>& pieces) const;
};

}  // namespace lopa::pretok
