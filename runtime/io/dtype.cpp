#include "runtime/io/dtype.h"

#include "runtime/base/error.h"

namespace lopa {

at::ScalarType parse_dtype(const std::string& name, const std::string& what) {
  if (name == "float32" || name == "fp32" || name == "float") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half") return at::kHalf;
  fail(what, ": unknown dtype '", name, "' (expected float32, bfloat16 or float16)");
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

std::optional<at::ScalarType> safetensors_dtype(const std::string& c) {
  if (c == "F32") return at::kFloat;
  if (c == "F16") return at::kHalf;
  if (c == "BF16") return at::kBFloat16;
  if (c == "F64") return at::kDouble;
  if (c == "I64") return at::kLong;
  if (c == "I32") return at::kInt;
  if (c == "I16") return at::kShort;
  if (c == "I8") return at::kChar;
  if (c == "U8") return at::kByte;
  if (c == "BOOL") return at::kBool;
  return std::nullopt;
}

std::string safetensors_code(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "F32";
    case at::kHalf: return "F16";
    case at::kBFloat16: return "BF16";
    case at::kDouble: return "F64";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kShort: return "I16";
    case at::kChar: return "I8";
    case at::kByte: return "U8";
    case at::kBool: return "BOOL";
    default: fail("safetensors cannot store dtype ", c10::toString(t));
  }
}

int64_t element_size(at::ScalarType t) { return static_cast<int64_t>(c10::elementSize(t)); }

std::string shape_string(c10::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace lopa
