// Unicode helpers for the tokenizer: UTF-8 decoding/encoding, the character classes that the
// pre-tokenizer regexes use (\p{L}, \p{N}, \s = White_Space, \w), and NFC/NFD normalization.
// Data comes from runtime/unicode_tables.cpp, generated from Python's unicodedata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lopa::unicode {

// Decodes one code point at s[pos], advancing pos. Returns false (pos unchanged) on invalid UTF-8
// (overlong forms, surrogates, > U+10FFFF, truncated sequences).
bool decode_one(const std::string& s, size_t& pos, uint32_t& cp);
// All code points of s; throws lopa::Error naming `what` and the byte offset on invalid UTF-8.
std::vector<uint32_t> decode(const std::string& s, const char* what = "text");
void append_utf8(std::string& out, uint32_t cp);
std::string encode(const std::vector<uint32_t>& cps);
// Like Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes U+FFFD.
std::string from_utf8_lossy(const std::string& bytes);
bool is_valid_utf8(const std::string& s);
// Byte offset of the first invalid UTF-8 sequence in s (by decode_one's rules), or std::string::npos.
size_t first_invalid_utf8(const std::string& s);

bool is_letter(uint32_t cp);      // \p{L}
bool is_number(uint32_t cp);      // \p{N}
bool is_whitespace(uint32_t cp);  // \s: the White_Space property
bool is_word(uint32_t cp);        // \w: L, N, M, Pc

// s with every occurrence of `from` replaced by `to` (s unchanged when `from` is empty): the
// tokenizer's normalizers and decoders, and the Metaspace pre-tokenizer.
std::string replace_all(const std::string& s, const std::string& from, const std::string& to);

std::string nfc(const std::string& s);
std::string nfd(const std::string& s);

const char* version();  // Unicode version of the tables

}  // namespace lopa::unicode
