#include "serve/soft_prompt_codec.h"

#include <cstring>

#include "runtime/base/error.h"
#include "runtime/io/dtype.h"

namespace lopa::serve {

namespace {
const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string base64_decode(const std::string& text, const std::string& what) {
  LOPA_CHECK(text.size() % 4 == 0, what, ": base64 length ", text.size(), " is not a multiple of 4");
  int8_t table[256];
  std::memset(table, -1, sizeof table);
  for (int i = 0; i < 64; ++i) table[uint8_t(kAlphabet[i])] = static_cast<int8_t>(i);
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2 && (j == 3 || text[i + 3] == '=')) {
        ++pad;
        v <<= 6;
        continue;
      }
      const int8_t d = table[uint8_t(c)];
      LOPA_CHECK(d >= 0 && pad == 0, what, ": invalid base64 character at position ", i + j);
      v = (v << 6) | uint32_t(d);
    }
    out += char((v >> 16) & 255);
    if (pad < 2) out += char((v >> 8) & 255);
    if (pad < 1) out += char(v & 255);
  }
  return out;
}

std::string encode_soft_prompt(const at::Tensor& z_in) {
  auto z = z_in.detach().to(at::kCPU, at::kFloat).contiguous();
  LOPA_CHECK(z.dim() == 2 || (z.dim() == 3 && z.size(0) == 1), "soft prompt of shape ", shape_string(z.sizes()), " is not m × d");
  static_assert(sizeof(float) == 4, "float32");
  // x86 and ARM Linux are little-endian, the wire order: the bytes go as they are.
  return base64_encode(std::string(reinterpret_cast<const char*>(z.data_ptr<float>()), z.numel() * sizeof(float)));
}

at::Tensor decode_soft_prompt(const std::string& text, int64_t d, const std::string& what) {
  const auto bytes = base64_decode(text, what);
  const int64_t row = 4 * d;
  LOPA_CHECK(!bytes.empty() && static_cast<int64_t>(bytes.size()) % row == 0, what, ": ", bytes.size(),
             " bytes is not m × ", d, " float32 values (a positive multiple of ", row, " bytes)");
  const int64_t m = static_cast<int64_t>(bytes.size()) / row;
  auto z = at::empty({1, m, d}, at::kFloat);
  std::memcpy(z.data_ptr<float>(), bytes.data(), bytes.size());
  LOPA_CHECK(at::isfinite(z).all().item<bool>(), what, ": holds a NaN or infinite value");
  return z;
}

}  // namespace lopa::serve
