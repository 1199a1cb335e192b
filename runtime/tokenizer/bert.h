// The BERT pieces of Hugging Face tokenizers: BertNormalizer (clean text, spaces around CJK ideographs,
// strip accents, lowercase), the Lowercase normalizer, and the character classes of BertPreTokenizer,
// with the exact character sets the Rust crate uses (runtime/tokenizer/bert_unicode_tables.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lopa::bert {

bool is_whitespace(uint32_t cp);    // \t \n \r or White_Space (BertNormalizer's)
bool is_control(uint32_t cp);       // what clean_text drops besides NUL and U+FFFD
bool is_chinese_char(uint32_t cp);  // the CJK ideograph blocks, those beyond the BMP included
bool is_punctuation(uint32_t cp);   // BertPreTokenizer: ASCII punctuation or a P* category
bool is_mark_nonspacing(uint32_t cp);
// Appends the full lowercase mapping of one code point (U+0130 gives two), as Rust's char::to_lowercase.
void append_lowercase(std::vector<uint32_t>& out, uint32_t cp);

struct NormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // unset: follow lowercase
  bool lowercase = true;
};
std::string normalize(const std::string& text, const NormalizerOptions& o);  // text: valid UTF-8
std::string lowercase(const std::string& text);

}  // namespace lopa::bert
