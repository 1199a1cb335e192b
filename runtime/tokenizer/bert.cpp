// BertNormalizer as HF tokenizers' normalizers/bert.rs applies it: clean_text, handle_chinese_chars,
// strip_accents (NFD, then drop Mn), lowercase, in that order, one code point at a time.
#include "runtime/tokenizer/bert.h"

#include <algorithm>

#include "runtime/tokenizer/bert_unicode_tables.h"
#include "runtime/tokenizer/unicode.h"

namespace lopa::bert {

namespace {

bool in_ranges(const bert_tables::CodeRange* r, size_t n, uint32_t cp) {
  const auto* end = r + n;
  const auto* it = std::upper_bound(r, end, cp, [](uint32_t c, const bert_tables::CodeRange& x) { return c < x.lo; });
  return it != r && cp <= (it - 1)->hi;
}

}  // namespace

bool is_whitespace(uint32_t cp) { return cp == '\t' || cp == '\n' || cp == '\r' || unicode::is_whitespace(cp); }

bool is_control(uint32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return in_ranges(bert_tables::kControl, bert_tables::kNumControl, cp);
}

bool is_chinese_char(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool is_punctuation(uint32_t cp) {
  if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
                        (cp >= 0x7B && cp <= 0x7E);
  return in_ranges(bert_tables::kPunctuation, bert_tables::kNumPunctuation, cp);
}

bool is_mark_nonspacing(uint32_t cp) {
  return in_ranges(bert_tables::kMarkNonspacing, bert_tables::kNumMarkNonspacing, cp);
}

void append_lowercase(std::vector<uint32_t>& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    return;
  }
  const auto* b = bert_tables::kLowercase;
  const auto* e = b + bert_tables::kNumLowercase;
  const auto* it = std::lower_bound(b, e, cp, [](const bert_tables::Lowercase& x, uint32_t c) { return x.cp < c; });
  if (it == e || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  out.push_back(it->first);
  if (it->second) out.push_back(it->second);
}

std::string normalize(const std::string& text, const NormalizerOptions& o) {
  std::vector<uint32_t> cps = unicode::decode(text, "BertNormalizer input");
  std::vector<uint32_t> next;
  next.reserve(cps.size());
  if (o.clean_text) {
    for (uint32_t c : cps) {
      if (c == 0 || c == 0xFFFD || is_control(c)) continue;
      next.push_back(is_whitespace(c) ? ' ' : c);
    }
    cps.swap(next);
  }
  if (o.handle_chinese_chars) {
    next.clear();
    for (uint32_t c : cps) {
      if (is_chinese_char(c)) {
        next.push_back(' ');
        next.push_back(c);
        next.push_back(' ');
      } else {
        next.push_back(c);
      }
    }
    cps.swap(next);
  }
  if (o.strip_accents.value_or(o.lowercase)) {
    cps = unicode::decode(unicode::nfd(unicode::encode(cps)), "BertNormalizer NFD");
    cps.erase(std::remove_if(cps.begin(), cps.end(), is_mark_nonspacing), cps.end());
  }
  if (o.lowercase) {
    next.clear();
    for (uint32_t c : cps) append_lowercase(next, c);
    cps.swap(next);
  }
  return unicode::encode(cps);
}

std::string lowercase(const std::string& text) {
  std::vector<uint32_t> out;
  for (uint32_t c : unicode::decode(text, "Lowercase input")) append_lowercase(out, c);
  return unicode::encode(out);
}

}  // namespace lopa::bert
