// The resumable state of a training run in RUN_DIR/checkpoint/: per rank its trainable parameters,
// the optimizer's state and the CPU random generator, plus the step, data cursor and best evaluation.
// Written to temporary names and renamed, with a marker file last, so a run killed while saving keeps
// the previous complete checkpoint.
#pragma once

#include <cstdint>
#include <string>

#include "lopa/method.h"

namespace torch::optim {
class Optimizer;
}

namespace lopa {

struct ProcessGroup;

struct TrainState {
  int64_t step = 0;          // optimizer steps done
  int64_t epoch = 0;         // data cursor: epoch of the next batch ...
  int64_t batch_in_epoch = 0;  // ... and its index within the epoch
  double best_metric = -1;   // best evaluation metric so far (-1: none)
  int64_t best_step = -1;
};

// True when `dir` holds a complete checkpoint.
bool checkpoint_exists(const std::string& dir);
// Collective over the world: every rank writes its own file; world rank 0 writes state.json and the marker.
void save_checkpoint(const std::string& dir, const ProcessGroup& pg, const NamedTensors& params,
                     torch::optim::Optimizer& opt, const TrainState& state);
// Restores this rank's parameters (in place), optimizer state and generator; returns the state.
TrainState load_checkpoint(const std::string& dir, const ProcessGroup& pg, const NamedTensors& params,
                           torch::optim::Optimizer& opt);
// The state alone (state.json), e.g. for `lopa eval`.
TrainState read_checkpoint_state(const std::string& dir);

}  // namespace lopa
