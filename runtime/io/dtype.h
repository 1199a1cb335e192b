// Scalar types by name: the run's dtype on the command line ("float32", "bfloat16", "float16") and
// the dtype codes of safetensors headers ("F32", "BF16", ...).
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <optional>
#include <string>

namespace lopa {

// "float32" | "fp32" | "float" → kFloat, "bfloat16" | "bf16" → kBFloat16, "float16" | "fp16" | "half" → kHalf.
// Throws lopa::Error naming `what` (e.g. "--dtype") for anything else.
at::ScalarType parse_dtype(const std::string& name, const std::string& what = "dtype");
std::string dtype_name(at::ScalarType t);  // "float32", "bfloat16", ...

// safetensors codes: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL. nullopt for an unknown code.
std::optional<at::ScalarType> safetensors_dtype(const std::string& code);
std::string safetensors_code(at::ScalarType t);  // throws for a type safetensors cannot hold
int64_t element_size(at::ScalarType t);

// "[2, 3, 4]": shapes in error messages.
std::string shape_string(c10::IntArrayRef shape);

}  // namespace lopa
