// Machine measurements for `lopa bench`: the matrix-multiply peak of this process (LibTorch matmul at
// a given dtype, measured now, on the same threads) and the process's resident-memory figures.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lopa {

// Best GFLOP/s of square n×n matmuls at `dtype` over `sizes` (each timed best-of `repeats` after a
// warm-up); 2n³ FLOPs per matmul.
double matmul_peak_gflops(at::ScalarType dtype, const std::vector<int64_t>& sizes, int repeats = 5,
                          c10::Device device = c10::Device(c10::kCPU));

// Waits for the kernels queued on `device` (a no-op on the CPU), so that a timer read after it covers
// them: CUDA launches return before the work is done.
void sync_device(c10::Device device);

// Peak resident set size of this process so far (VmHWM of /proc/self/status), bytes; 0 if unknown.
int64_t peak_rss_bytes();
// Current resident set size (VmRSS), bytes; 0 if unknown.
int64_t current_rss_bytes();

// Seconds to read `paths` once, sequentially, into one reused buffer: the I/O floor a checkpoint
// load is compared with (page cache as it is).
double read_files_seconds(const std::vector<std::string>& paths, int64_t* total_bytes = nullptr);

}  // namespace lopa
