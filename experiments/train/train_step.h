// The pieces of one training step shared by the trainer and `lopa bench train`, so the benchmark
// times exactly the step that training runs: a micro-batch's forward, loss and backward, and the
// global gradient norm with clipping.
#pragma once

#include <functional>
#include <string>

#include <ATen/ATen.h>

#include "experiments/eval/batching.h"
#include "runtime/io/safetensors.h"  // NamedTensors

namespace lopa {

class CausalLM;
class Method;
struct ProcessGroup;

// FM forward with `method` applied (under autocast to `autocast` unless it is kFloat), mean LM loss
// over the batch's target tokens, backward of loss·scale (gradients accumulate). Returns the
// unscaled loss value.
double micro_batch_backward(Method& method, CausalLM& fm, const TokenBatch& batch, const at::Tensor& encoder_embedding,
                            double scale, at::ScalarType autocast = at::kFloat);

// Global gradient L2 norm of `named` (replicated parameters once, tp-sharded ones summed over the
// tp group); when max_norm > 0 and the norm exceeds it, scales every gradient down to max_norm.
double clip_gradients(const NamedTensors& named, const Method& method, const ProcessGroup& pg, double max_norm);
// The same with the tp-sharded parameters named by `is_sharded` (the method's and a trained encoder's).
double clip_gradients(const NamedTensors& named, const std::function<bool(const std::string&)>& is_sharded,
                      const ProcessGroup& pg, double max_norm);

}  // namespace lopa
