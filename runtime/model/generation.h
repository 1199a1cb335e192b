// Text generation with a KV cache: batched prompts with left padding, greedy (temperature 0) or
// temperature + top-p sampling with a seed, stopping at EOS or max tokens. Under tp every rank samples
// from the same gathered full-vocabulary logits with the same generator, so all ranks agree.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace lopa {

class CausalLM;

struct GenerationConfig {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;
  uint64_t seed = 0;         // each prompt gets its own generator seeded with `seed` (batch-independent)
  std::vector<int64_t> eos_token_ids;  // empty: the model config's eos_token_id
  int64_t pad_token_id = -1;           // -1: config pad, else EOS, else 0
};

// Prefix tuning: per-layer keys/values (1 or B) × kv_heads_local × P × head_dim.
struct KVPrefix {
  std::vector<at::Tensor> keys, values;
};

// Generated ids per prompt (EOS included when reached, nothing after it). soft_prompt: B × m × d (or
// 1 × m × d) embeddings prepended before each (left-padded) prompt, as PEFT prompt tuning does.
std::vector<std::vector<int64_t>> generate(const CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerationConfig& config, const at::Tensor& soft_prompt = {},
                                           const KVPrefix* prefix = nullptr);

// Picks the next token from one row of logits (V, any float type) as generate() does: argmax when
// temperature is 0, else temperature, top-p and a multinomial draw from `gen`.
int64_t sample_next(const at::Tensor& logits, double temperature, double top_p, at::Generator& gen);

}  // namespace lopa
