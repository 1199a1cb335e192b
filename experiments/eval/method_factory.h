// Creates the run's Method from its TrainConfig (lopa, pt, idpg, lora, prefix, fft), initialised with
// the run's seed identically on every rank.
#pragma once

#include <memory>
#include <string>

#include "experiments/tasks/train_config.h"
#include "lopa/method.h"

namespace lopa {

class CausalLM;
class Tokenizer;

// encoder_dim: H of the instance encoder (the FM's d when the encoder is the FM itself).
std::unique_ptr<Method> make_method(const TrainConfig& cfg, CausalLM& fm, const Tokenizer& tok, int64_t encoder_dim);

}  // namespace lopa
