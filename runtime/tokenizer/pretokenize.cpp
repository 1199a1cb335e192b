// Hand-written matchers for the pre-tokenizer regexes, and the HF pre-tokenizers built on them.
// Each matcher tries the pattern's alternatives in order at a position, with the backtracking that
// Oniguruma would do spelled out, and returns the first that matches (leftmost-first semantics).
#include "runtime/tokenizer/pretokenize.h"

#include <algorithm>
#include <array>

#include "runtime/base/error.h"
#include "runtime/tokenizer/bert.h"
#include "runtime/tokenizer/unicode.h"

namespace lopa::pretok {

namespace {

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum : uint8_t { kL = 1, kN = 2, kS = 4 };

struct Text {
  std::vector<uint32_t> cp;
  std::vector<size_t> off;  // byte offset of each code point, plus the end
  std::vector<uint8_t> cls;
  explicit Text(const std::string& s) {
    cp.reserve(s.size());
    off.reserve(s.size() + 1);
    size_t pos = 0;
    uint32_t c;
    while (pos < s.size()) {
      off.push_back(pos);
      if (!unicode::decode_one(s, pos, c)) fail("pre-tokenizer: invalid UTF-8 at byte ", pos);
      cp.push_back(c);
    }
    off.push_back(s.size());
    cls.resize(cp.size());
    for (size_t i = 0; i < cp.size(); ++i) {
      const uint32_t x = cp[i];
      cls[i] = unicode::is_letter(x) ? kL : unicode::is_number(x) ? kN : unicode::is_whitespace(x) ? kS : 0;
    }
  }
  size_t size() const { return cp.size(); }
};

bool is_other(uint8_t c) { return c == 0; }  // [^\s\p{L}\p{N}]
bool is_crlf(uint32_t c) { return c == '\r' || c == '\n'; }

// 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive (Unicode simple case folding: ſ folds to s,
// K (Kelvin) to k — no k in the pattern). Returns the match end or 0.
size_t contraction(const Text& t, size_t i, bool icase) {
  const size_t n = t.size();
  if (t.cp[i] != '\'' || i + 1 >= n) return 0;
  auto is = [&](size_t k, char lower) {
    if (k >= n) return false;
    const uint32_t c = t.cp[k];
    if (c == static_cast<uint32_t>(lower)) return true;
    if (!icase) return false;
    if (c == static_cast<uint32_t>(lower - 'a' + 'A')) return true;
    return lower == 's' && c == 0x17F;
  };
  if (is(i + 1, 's') || is(i + 1, 't') || is(i + 1, 'm') || is(i + 1, 'd')) return i + 2;
  if (is(i + 1, 'r') && is(i + 2, 'e')) return i + 3;
  if (is(i + 1, 'v') && is(i + 2, 'e')) return i + 3;
  if (is(i + 1, 'l') && is(i + 2, 'l')) return i + 3;
  return 0;
}

// \s+(?!\S) then \s+ : returns the end of whichever matches first, or 0.
size_t whitespace_run(const Text& t, size_t i) {
  const size_t n = t.size();
  if (!(t.cls[i] & kS)) return 0;
  size_t e = i;
  while (e < n && (t.cls[e] & kS)) ++e;
  if (e == n) return e;         // \s+(?!\S) at the end of text
  if (e - 1 > i) return e - 1;  // backtrack one so that a space follows
  return e;                     // \s+
}

// A run of class `want` starting at j, with an optional leading U+0020 before it. Returns 0 if none.
template <typename Pred>
size_t space_then_run(const Text& t, size_t i, Pred pred) {
  const size_t n = t.size();
  size_t j = i;
  if (t.cp[j] == ' ' && j + 1 < n && pred(t.cls[j + 1])) ++j;
  if (!pred(t.cls[j])) return 0;
  while (j < n && pred(t.cls[j])) ++j;
  return j;
}

size_t match_gpt2(const Text& t, size_t i) {
  if (size_t e = contraction(t, i, false)) return e;
  if (size_t e = space_then_run(t, i, [](uint8_t c) { return c == kL; })) return e;
  if (size_t e = space_then_run(t, i, [](uint8_t c) { return c == kN; })) return e;
  if (size_t e = space_then_run(t, i, is_other)) return e;
  return whitespace_run(t, i);
}

size_t match_llama3(const Text& t, size_t i, size_t max_digits) {
  const size_t n = t.size();
  if (size_t e = contraction(t, i, true)) return e;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  {
    size_t j = i;
    if (t.cls[j] != kL && t.cls[j] != kN && !is_crlf(t.cp[j]) && j + 1 < n && t.cls[j + 1] == kL) ++j;
    if (t.cls[j] == kL) {
      while (j < n && t.cls[j] == kL) ++j;
      return j;
    }
  }
  // \p{N}{1,max}
  if (t.cls[i] == kN) {
    size_t j = i;
    while (j < n && j - i < max_digits && t.cls[j] == kN) ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  if (size_t e = space_then_run(t, i, is_other)) {
    while (e < n && is_crlf(t.cp[e])) ++e;
    return e;
  }
  // \s*[\r\n]+ : the whitespace run up to and including its last \r or \n
  if (t.cls[i] & kS) {
    size_t e = i, last_nl = n;
    while (e < n && (t.cls[e] & kS)) {
      if (is_crlf(t.cp[e])) last_nl = e;
      ++e;
    }
    if (last_nl != n) return last_nl + 1;
  }
  return whitespace_run(t, i);
}

std::array<std::string, 256> make_byte_map() {
  std::array<std::string, 256> m;
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? b : 256 + extra++;
    unicode::append_utf8(m[b], cp);
  }
  return m;
}

const std::array<std::string, 256>& byte_map() {
  static const auto m = make_byte_map();  // immutable table
  return m;
}

// Cuts `text` at the given match spans following `behavior` (HF NormalizedString::split).
void split_by_spans(const std::string& text, bool at_origin, std::vector<std::pair<size_t, size_t>> matches,
                    Behavior behavior, bool invert, std::vector<Piece>& out) {
  // (begin, end, is_match) covering the whole text
  struct Span { size_t b, e; bool m; };
  std::vector<Span> spans;
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (b > prev) spans.push_back({prev, b, false});
    spans.push_back({b, e, true});
    prev = e;
  }
  if (prev < text.size()) spans.push_back({prev, text.size(), false});
  if (invert)
    for (auto& s : spans) s.m = !s.m;

  std::vector<Span> pieces;
  switch (behavior) {
    case Behavior::kRemoved:
      for (auto& s : spans)
        if (!s.m) pieces.push_back(s);
      break;
    case Behavior::kIsolated:
      pieces = spans;
      break;
    case Behavior::kMergedWithPrevious:
      for (auto& s : spans) {
        if (s.m && !pieces.empty() && !pieces.back().m) pieces.back().e = s.e, pieces.back().m = true;
        else pieces.push_back(s);
      }
      break;
    case Behavior::kMergedWithNext: {
      // From the end: a match joins the non-match that follows it.
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->m && !previous_match && !pieces.empty()) pieces.back().b = it->b;
        else pieces.push_back(*it);
        previous_match = it->m;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
    case Behavior::kContiguous:
      for (auto& s : spans) {
        if (s.m && !pieces.empty() && pieces.back().m) pieces.back().e = s.e;
        else pieces.push_back(s);
      }
      break;
  }
  for (auto& s : pieces)
    if (s.e > s.b) out.push_back({text.substr(s.b, s.e - s.b), at_origin && s.b == 0});
}

std::vector<std::pair<size_t, size_t>> find_literal(const std::string& text, const std::string& lit) {
  std::vector<std::pair<size_t, size_t>> out;
  if (lit.empty()) return out;
  size_t pos = 0;
  while ((pos = text.find(lit, pos)) != std::string::npos) {
    out.emplace_back(pos, pos + lit.size());
    pos += lit.size();
  }
  return out;
}

// Spans of single code points (or runs) satisfying pred.
template <typename Pred>
std::vector<std::pair<size_t, size_t>> find_class(const std::string& text, Pred pred, bool runs) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t pos = 0;
  uint32_t cp;
  while (pos < text.size()) {
    const size_t b = pos;
    unicode::decode_one(text, pos, cp);
    if (!pred(cp)) continue;
    if (runs && !out.empty() && out.back().second == b) out.back().second = pos;
    else out.emplace_back(b, pos);
  }
  return out;
}

}  // namespace

std::optional<SplitRegex> recognize_regex(const std::string& pattern) {
  if (pattern == kGpt2Pattern) return SplitRegex::kGpt2;
  if (pattern == kLlama3Pattern) return SplitRegex::kLlama3;
  if (pattern == kQwen2Pattern) return SplitRegex::kQwen2;
  return std::nullopt;
}

std::vector<std::pair<size_t, size_t>> find_matches(SplitRegex re, const std::string& text) {
  const Text t(text);
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < t.size()) {
    size_t e = 0;
    switch (re) {
      case SplitRegex::kGpt2: e = match_gpt2(t, i); break;
      case SplitRegex::kLlama3: e = match_llama3(t, i, 3); break;
      case SplitRegex::kQwen2: e = match_llama3(t, i, 1); break;
    }
    if (e > i) {
      out.emplace_back(t.off[i], t.off[e]);
      i = e;
    } else {
      ++i;  // no alternative matches here: this code point falls in a gap
    }
  }
  return out;
}

const std::string& byte_to_char(uint8_t b) { return byte_map()[b]; }

int char_to_byte(uint32_t cp) {
  if ((cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return static_cast<int>(cp);
  if (cp < 256 || cp >= 256 + 68) return -1;
  // The 68 non-printable bytes, in increasing order, map to 256, 257, ...
  static const auto inverse = [] {
    std::array<int, 68> inv{};
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      if (!printable) inv[extra++] = b;
    }
    return inv;
  }();
  return inverse[cp - 256];
}

void PreTokenizer::apply(std::vector<Piece>& pieces) const {
  std::vector<Piece> out;
  switch (kind) {
    case Kind::kSequence:
      for (const auto& c : children) c.apply(pieces);
      return;
    case Kind::kByteLevel:
      for (auto& p : pieces) {
        std::string text = p.text;
        if (add_prefix_space && (text.empty() || text[0] != ' ')) text.insert(text.begin(), ' ');
        std::vector<Piece> parts;
        if (use_regex) split_by_spans(text, p.at_origin, find_matches(SplitRegex::kGpt2, text), Behavior::kIsolated, false, parts);
        else parts.push_back({text, p.at_origin});
        for (auto& q : parts) {
          std::string mapped;
          mapped.reserve(q.text.size() * 2);
          for (unsigned char b : q.text) mapped += byte_map()[b];
          out.push_back({std::move(mapped), q.at_origin});
        }
      }
      break;
    case Kind::kSplitRegex:
      for (auto& p : pieces) split_by_spans(p.text, p.at_origin, find_matches(regex, p.text), behavior, invert, out);
      break;
    case Kind::kSplitString:
      for (auto& p : pieces) split_by_spans(p.text, p.at_origin, find_literal(p.text, literal), behavior, invert, out);
      break;
    case Kind::kMetaspace:
      for (auto& p : pieces) {
        std::string text = unicode::replace_all(p.text, " ", replacement);
        const bool starts = text.compare(0, replacement.size(), replacement) == 0;
        if (!starts && (prepend == Prepend::kAlways || (prepend == Prepend::kFirst && p.at_origin)))
          text.insert(0, replacement);
        if (split) split_by_spans(text, p.at_origin, find_literal(text, replacement), Behavior::kMergedWithNext, false, out);
        else out.push_back({std::move(text), p.at_origin});
      }
      break;
    case Kind::kDigits:
      for (auto& p : pieces)
        split_by_spans(p.text, p.at_origin, find_class(p.text, unicode::is_number, !individual_digits), Behavior::kIsolated,
                       false, out);
      break;
    case Kind::kWhitespaceSplit:
      for (auto& p : pieces)
        split_by_spans(p.text, p.at_origin, find_class(p.text, unicode::is_whitespace, true), Behavior::kRemoved, false, out);
      break;
    case Kind::kBert: {
      // BertPreTokenizer: drop White_Space, then every punctuation character is a piece of its own.
      std::vector<Piece> words;
      for (auto& p : pieces)
        split_by_spans(p.text, p.at_origin, find_class(p.text, unicode::is_whitespace, true), Behavior::kRemoved, false, words);
      for (auto& w : words)
        split_by_spans(w.text, w.at_origin, find_class(w.text, bert::is_punctuation, false), Behavior::kIsolated, false, out);
      break;
    }
  }
  pieces = std::move(out);
}

}  // namespace lopa::pretok
