// Shape bookkeeping shared by the MPI and NCCL backends: both exchange rank-major contiguous buffers
// (rank i's block first) and convert them from/to "concatenated along dim".
#pragma once

#include <ATen/ATen.h>

#include <sstream>
#include <string>

#include "runtime/base/error.h"

namespace lopa::layout {

// Names for messages, as plain strings: c10 types passed to lopa::str would also match c10::str by ADL.
inline std::string dtype_name(at::ScalarType t) { return c10::toString(t); }
// "Float[4, 8]"
inline std::string describe(const at::Tensor& t) {
  std::ostringstream os;
  os << c10::toString(t.scalar_type()) << t.sizes();
  return os.str();
}

// `dim` wrapped into [0, t.dim()); a 0-d tensor has no dim to gather or scatter along.
inline int64_t wrap_dim(const at::Tensor& t, int64_t dim, const char* op) {
  LOPA_CHECK(t.dim() > 0, op, ": a 0-d tensor has no dimension ", dim);
  const int64_t d = dim < 0 ? dim + t.dim() : dim;
  LOPA_CHECK(d >= 0 && d < t.dim(), op, ": dim ", dim, " is out of range for a ", t.dim(), "-d tensor");
  return d;
}

// [n, s0, .., s_dim, ..] (rank-major blocks) → [s0, .., n*s_dim, ..]: rank blocks concatenated along dim.
inline at::Tensor blocks_to_concat(const at::Tensor& blocks, int64_t dim) {
  if (dim == 0) return blocks.flatten(0, 1);
  return blocks.movedim(0, dim).flatten(dim, dim + 1);
}

// [s0, .., s_dim, ..] → contiguous [n, s0, .., s_dim/n, ..]: block i is the i-th equal slice along dim.
inline at::Tensor concat_to_blocks(const at::Tensor& t, int64_t dim, int64_t n, const char* op) {
  const int64_t s = t.size(dim);
  LOPA_CHECK(s % n == 0, op, ": size ", s, " of dim ", dim, " does not split into ", n, " equal parts");
  std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
  shape[dim] = s / n;
  shape.insert(shape.begin() + dim, n);
  return t.reshape(shape).movedim(dim, 0).contiguous();
}

}  // namespace lopa::layout
