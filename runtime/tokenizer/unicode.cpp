// UTF-8 and Unicode character classes / canonical normalization over the generated tables.
#include "runtime/tokenizer/unicode.h"

#include <algorithm>
#include <unordered_map>

#include "runtime/base/error.h"
#include "runtime/tokenizer/unicode_tables.h"

namespace lopa::unicode {

namespace T = lopa::unicode_tables;

bool decode_one(const std::string& s, size_t& pos, uint32_t& cp) {
  const size_t n = s.size();
  if (pos >= n) return false;
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    cp = b0;
    pos += 1;
    return true;
  }
  int len;
  uint32_t c, min;
  if (b0 >= 0xC2 && b0 <= 0xDF) { len = 2; c = b0 & 0x1F; min = 0x80; }
  else if (b0 >= 0xE0 && b0 <= 0xEF) { len = 3; c = b0 & 0x0F; min = 0x800; }
  else if (b0 >= 0xF0 && b0 <= 0xF4) { len = 4; c = b0 & 0x07; min = 0x10000; }
  else return false;
  if (pos + len > n) return false;
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return false;
    c = (c << 6) | (b & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
  cp = c;
  pos += len;
  return true;
}

std::vector<uint32_t> decode(const std::string& s, const char* what) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    if (!decode_one(s, pos, cp)) fail(what, ": invalid UTF-8 at byte ", pos);
    out.push_back(cp);
  }
  return out;
}

size_t first_invalid_utf8(const std::string& s) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size())
    if (!decode_one(s, pos, cp)) return pos;
  return std::string::npos;
}

bool is_valid_utf8(const std::string& s) { return first_invalid_utf8(s) == std::string::npos; }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (auto cp : cps) append_utf8(out, cp);
  return out;
}

std::string from_utf8_lossy(const std::string& s) {
  // Maximal-subpart substitution (Unicode §3.9, as Rust and WHATWG do): a lead byte followed by a
  // valid but truncated continuation prefix is replaced by one U+FFFD as a whole.
  std::string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    size_t p = i;
    uint32_t cp;
    if (decode_one(s, p, cp)) {
      out.append(s, i, p - i);
      i = p;
      continue;
    }
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t len = 1;
    auto in = [&](size_t k, unsigned lo, unsigned hi) {
      if (i + k >= n) return false;
      const auto b = static_cast<unsigned char>(s[i + k]);
      return b >= lo && b <= hi;
    };
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
      if (in(1, lo, hi)) len = 2;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      unsigned lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
      if (in(1, lo, hi)) {
        len = 2;
        if (in(2, 0x80, 0xBF)) len = 3;
      }
    }
    out += "\xEF\xBF\xBD";
    i += len;
  }
  return out;
}

static int category_group(uint32_t cp) {
  const T::CategoryRange* begin = T::kCategoryRanges;
  const T::CategoryRange* end = T::kCategoryRanges + T::kNumCategoryRanges;
  auto it = std::upper_bound(begin, end, cp, [](uint32_t c, const T::CategoryRange& r) { return c < r.lo; });
  if (it == begin) return 0;
  --it;
  return cp <= it->hi ? it->group : 0;
}

bool is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return category_group(cp) == 1;
}

bool is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return category_group(cp) == 2;
}

bool is_whitespace(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  for (size_t i = 0; i < T::kNumWhiteSpace; ++i)
    if (cp >= T::kWhiteSpace[i].lo && cp <= T::kWhiteSpace[i].hi) return true;
  return false;
}

bool is_word(uint32_t cp) {
  if (cp < 0x80) return is_letter(cp) || is_number(cp) || cp == '_';
  return category_group(cp) != 0;
}

const char* version() { return T::kUnicodeVersion; }

// ---- canonical normalization ----

namespace {

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

struct NormTables {
  std::unordered_map<uint32_t, uint8_t> ccc;
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> decomp;
  std::unordered_map<uint64_t, uint32_t> comp;
  NormTables() {
    for (size_t i = 0; i < T::kNumCombiningClasses; ++i) ccc[T::kCombiningClasses[i].cp] = T::kCombiningClasses[i].ccc;
    for (size_t i = 0; i < T::kNumDecompositions; ++i)
      decomp[T::kDecompositions[i].cp] = {T::kDecompositions[i].first, T::kDecompositions[i].second};
    for (size_t i = 0; i < T::kNumCompositions; ++i)
      comp[(uint64_t(T::kCompositions[i].first) << 32) | T::kCompositions[i].second] = T::kCompositions[i].composite;
  }
};

const NormTables& norm_tables() {
  static const NormTables t;  // immutable lookup data, built once
  return t;
}

uint8_t ccc_of(const NormTables& t, uint32_t cp) {
  if (cp < 0x300) return 0;
  auto it = t.ccc.find(cp);
  return it == t.ccc.end() ? 0 : it->second;
}

void decompose_into(const NormTables& t, uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  auto it = cp < 0xC0 ? t.decomp.end() : t.decomp.find(cp);
  if (it == t.decomp.end()) {
    out.push_back(cp);
    return;
  }
  decompose_into(t, it->second.first, out);
  if (it->second.second) decompose_into(t, it->second.second, out);
}

std::vector<uint32_t> canonical_decompose(const std::vector<uint32_t>& cps) {
  const auto& t = norm_tables();
  std::vector<uint32_t> out;
  out.reserve(cps.size() + 8);
  for (auto cp : cps) decompose_into(t, cp, out);
  // Canonical ordering: stable sort each run of non-starters by combining class.
  size_t i = 0;
  while (i < out.size()) {
    if (ccc_of(t, out[i]) == 0) { ++i; continue; }
    size_t j = i;
    while (j < out.size() && ccc_of(t, out[j]) != 0) ++j;
    std::stable_sort(out.begin() + i, out.begin() + j,
                     [&](uint32_t a, uint32_t b) { return ccc_of(t, a) < ccc_of(t, b); });
    i = j;
  }
  return out;
}

bool all_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

}  // namespace

std::string nfd(const std::string& s) {
  if (all_ascii(s)) return s;
  return encode(canonical_decompose(decode(s)));
}

std::string nfc(const std::string& s) {
  if (all_ascii(s)) return s;
  const auto& t = norm_tables();
  std::vector<uint32_t> d = canonical_decompose(decode(s));
  // Canonical composition (UAX #15): combine each character with the last starter unless blocked.
  std::vector<uint32_t> out;
  out.reserve(d.size());
  long starter = -1;
  int last_ccc = -1;
  for (uint32_t cp : d) {
    const int c = ccc_of(t, cp);
    if (starter >= 0 && (last_ccc < c || (last_ccc == 0 && static_cast<long>(out.size()) == starter + 1))) {
      const uint32_t st = out[starter];
      uint32_t composed = 0;
      if (st >= kLBase && st < kLBase + kLCount && cp >= kVBase && cp < kVBase + kVCount) {
        composed = kSBase + ((st - kLBase) * kVCount + (cp - kVBase)) * kTCount;
      } else if (st >= kSBase && st < kSBase + kSCount && (st - kSBase) % kTCount == 0 && cp > kTBase &&
                 cp < kTBase + kTCount) {
        composed = st + (cp - kTBase);
      } else {
        auto it = t.comp.find((uint64_t(st) << 32) | cp);
        if (it != t.comp.end()) composed = it->second;
      }
      if (composed) {
        out[starter] = composed;
        continue;
      }
    }
    if (c == 0) {
      starter = static_cast<long>(out.size());
      last_ccc = 0;  // a starter right after the starter position blocks nothing yet
    } else {
      last_ccc = c;
    }
    out.push_back(cp);
  }
  return encode(out);
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0, hit;
  while ((hit = s.find(from, pos)) != std::string::npos) {
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

}  // namespace lopa::unicode
