// Learning-rate schedules as Hugging Face transformers defines them (get_*_schedule_with_warmup): the
// multiplier of the peak rate for 0-based optimizer step `step` of `total`, after `warmup` linear steps.
//   constant  step < warmup: step / warmup, then 1
//   linear    step < warmup: step / warmup, then (total - step) / (total - warmup), floored at 0
//   cosine    step < warmup: step / warmup, then 0.5 (1 + cos(π progress)), progress = (step - warmup) / (total - warmup)
#pragma once

#include <cstdint>
#include <string>

namespace lopa {

double schedule_factor(const std::string& schedule, int64_t step, int64_t warmup, int64_t total);

}  // namespace lopa
