#include "experiments/bench/bench_probe.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "runtime/base/error.h"

namespace lopa {

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int64_t status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, k.size(), k) != 0) continue;
    std::istringstream ss(line.substr(k.size()));
    int64_t kb = 0;
    ss >> kb;
    return kb;
  }
  return 0;
}

}  // namespace

void sync_device(c10::Device device) {
  // A device-to-host copy on the current stream waits for everything queued before it.
  if (device.is_cuda()) at::zeros({1}, at::TensorOptions().device(device)).cpu();
}

double matmul_peak_gflops(at::ScalarType dtype, const std::vector<int64_t>& sizes, int repeats, c10::Device device) {
  at::NoGradGuard no_grad;
  double best = 0;
  for (int64_t n : sizes) {
    auto opt = at::TensorOptions().dtype(dtype).device(device);
    auto a = at::randn({n, n}, opt), b = at::randn({n, n}, opt), c = at::empty({n, n}, opt);
    at::mm_out(c, a, b);  // warm-up: BLAS thread pool, packing buffers
    sync_device(device);
    for (int r = 0; r < repeats; ++r) {
      const double t0 = now();
      at::mm_out(c, a, b);
      sync_device(device);
      const double dt = now() - t0;
      if (dt > 0) best = std::max(best, 2.0 * n * n * n / dt / 1e9);
    }
  }
  return best;
}

int64_t peak_rss_bytes() { return status_kb("VmHWM") * 1024; }
int64_t current_rss_bytes() { return status_kb("VmRSS") * 1024; }

double read_files_seconds(const std::vector<std::string>& paths, int64_t* total_bytes) {
  std::vector<char> buf(8 << 20);
  int64_t total = 0;
  const double t0 = now();
  for (const auto& p : paths) {
    FILE* f = std::fopen(p.c_str(), "rb");
    LOPA_CHECK(f, p, ": cannot open");
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) total += static_cast<int64_t>(n);
    std::fclose(f);
  }
  const double dt = now() - t0;
  if (total_bytes) *total_bytes = total;
  return dt;
}

}  // namespace lopa
