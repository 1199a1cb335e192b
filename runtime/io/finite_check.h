// A scan of stored weights for NaN and ±Inf (`lopa info --check-weights`): a checkpoint trained into
// divergence still loads and runs, but every logit it gives is garbage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/io/checkpoint.h"

namespace lopa {

struct NonFiniteTensor {
  std::string name, file;  // the tensor and the file (shard) holding it
  int64_t numel = 0, nan = 0, pos_inf = 0, neg_inf = 0;
  int64_t first = -1;      // flat index of the first non-finite value
};

struct FiniteScan {
  int64_t tensors = 0, values = 0;         // floating-point tensors and values scanned
  std::vector<NonFiniteTensor> bad;        // in name order
};

// Reads every floating-point tensor of `ck` (a chunk at a time, so a 7B checkpoint needs no copy of
// a whole tensor) and counts its non-finite values.
FiniteScan scan_non_finite(const Checkpoint& ck);

// "'name' in FILE: 3 NaN, 1 +Inf of 4096 values, the first at flat index 17".
std::string describe(const NonFiniteTensor& t);

}  // namespace lopa
