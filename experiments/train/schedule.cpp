#include "experiments/train/schedule.h"

#include <algorithm>
#include <cmath>

#include "runtime/base/error.h"

namespace lopa {

double schedule_factor(const std::string& schedule, int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  if (schedule == "constant") return 1.0;
  const double span = static_cast<double>(std::max<int64_t>(1, total - warmup));
  const double progress = static_cast<double>(step - warmup) / span;
  if (schedule == "linear") return std::max(0.0, 1.0 - progress);
  if (schedule == "cosine") return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
  fail("schedule: unknown value '", schedule, "' (constant, linear, cosine)");
}

}  // namespace lopa
