// LinearAdapter: a hook on one projection of the frozen FM (LoRA and similar). The projection adds
// delta(x) to its local output, before any tensor-parallel reduction: x is the projection's local
// input as it arrives (the replicated input of a column-parallel projection, not yet passed through
// copy_to_region; this rank's input slice of a row-parallel one) and delta(x) must have the
// projection's local output shape (…×out_local). Under tp the adapter owns its gradient semantics:
// the input gradient it returns for a column-parallel projection must already be whole.
#pragma once

#include <ATen/ATen.h>

namespace lopa {

struct LinearAdapter {
  virtual ~LinearAdapter() = default;
  virtual at::Tensor delta(const at::Tensor& x) = 0;
};

}  // namespace lopa
