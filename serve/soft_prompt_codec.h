// The wire form of a client-computed soft prompt (`"soft_prompt"` of a request, printed by `lopa prompt`):
// an m × d float32 array, row-major, little-endian, base64 (RFC 4648, with padding).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace lopa::serve {

std::string base64_encode(const std::string& bytes);
// Throws lopa::Error naming `what` and the offending position on a character outside the alphabet or
// a length that is not a multiple of 4.
std::string base64_decode(const std::string& text, const std::string& what);

// m × d float32 (any float tensor of that shape, converted) → base64.
std::string encode_soft_prompt(const at::Tensor& z);
// base64 → 1 × m × d float32. d is the FM's hidden size; the byte count must be a positive multiple of
// 4·d, and every value finite. `what` names the source in errors.
at::Tensor decode_soft_prompt(const std::string& text, int64_t d, const std::string& what);

}  // namespace lopa::serve
