// The FM options of `lopa pretrain`, shared with `lopa demo` (same names, so that a demo's FM can be
// made by hand with `lopa pretrain` and the same keys).
#pragma once

#include "apps/options.h"
#include "experiments/train/pretrain.h"

namespace lopa::app {

void add_pretrain_options(po::options_description& desc, const PretrainConfig& defaults);
PretrainConfig pretrain_config_from(const po::variables_map& vm);

}  // namespace lopa::app
