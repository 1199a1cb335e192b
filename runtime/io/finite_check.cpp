#include "runtime/io/finite_check.h"

#include "runtime/base/error.h"

namespace lopa {

FiniteScan scan_non_finite(const Checkpoint& ck) {
  FiniteScan out;
  constexpr int64_t kChunk = int64_t(1) << 22;  // values per pass: bounded temporaries
  for (const auto& name : ck.names()) {
    const at::Tensor t = ck.tensor(name).reshape({-1});
    if (!at::isFloatingType(t.scalar_type())) continue;
    ++out.tensors;
    out.values += t.numel();
    NonFiniteTensor r;
    r.name = name;
    r.file = ck.file_of(name);
    r.numel = t.numel();
    for (int64_t off = 0; off < t.numel(); off += kChunk) {
      const at::Tensor c = t.narrow(0, off, std::min(kChunk, t.numel() - off)).to(at::kFloat);
      const at::Tensor bad = at::isfinite(c).logical_not();
      if (!bad.any().item<bool>()) continue;
      r.nan += at::isnan(c).sum().item<int64_t>();
      r.pos_inf += at::isposinf(c).sum().item<int64_t>();
      r.neg_inf += at::isneginf(c).sum().item<int64_t>();
      if (r.first < 0) r.first = off + bad.nonzero()[0][0].item<int64_t>();
    }
    if (r.first >= 0) out.bad.push_back(std::move(r));
  }
  return out;
}

std::string describe(const NonFiniteTensor& t) {
  std::string kinds;
  const auto add = [&](int64_t n, const char* what) {
    if (n > 0) kinds += (kinds.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  };
  add(t.nan, "NaN");
  add(t.pos_inf, "+Inf");
  add(t.neg_inf, "-Inf");
  return str("'", t.name, "' in ", t.file, ": ", kinds, " of ", t.numel, " values, the first at flat index ", t.first);
}

}  // namespace lopa
