// Running the frozen FM with a method applied: instance embeddings from the (frozen) encoder, the soft
// prompt prepended to the input embeddings (its positions masked in as real, labelled -100), KV
// prefixes seeded into a cache (prefix tuning), and per-sequence target log-likelihoods for scoring.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "experiments/eval/batching.h"

namespace lopa {

class CausalLM;
class Method;

// Encoder embeddings (N×H, float32, on the encoder's device) of items[idx] for every idx: the
// encoder's last hidden states (any registered architecture: bidirectional for the encoder families)
// pooled by `pooling` ("auto": the family's rule, see runtime/model/encoder.h; "first", "mean"
// (L2-normalised), "last"). Without gradient unless `with_grad` (train-encoder = true).
at::Tensor encode_instances(const CausalLM& encoder, const std::vector<TrainItem>& items,
                            const std::vector<int64_t>& idx, const std::string& pooling, int64_t batch_size,
                            int64_t pad_id, bool with_grad = false);

// Where a soft prompt goes in the FM's input and how the positions are numbered.
struct InputLayout {
  int64_t prompt_at = 0;          // the soft prompt goes before this input column (a decoder: 0; cloze: 1, after <s>)
  bool family_positions = false;  // positions as transformers numbers inputs_embeds (RoBERTa from padding_idx + 1),
                                  // shifted by a KV prefix's length; otherwise from the mask (decoders)
};

// The FM's final hidden states for `batch` with `method` applied. `encoder_embedding` (B×H) is used
// when method.needs_encoder(). Returns hidden B×(P+T)×d and sets `labels` to the matching B×(P+T)
// labels (P = soft-prompt length). labelled_tail (a causal FM): only the columns from the one before
// the first labelled column on — all that a causal-LM loss or log-likelihood reads — with `labels`
// cut alike; the FM's last block then runs for those positions only.
at::Tensor method_forward(Method& method, CausalLM& fm, const TokenBatch& batch, const at::Tensor& encoder_embedding,
                          at::Tensor& labels, const InputLayout& layout = {}, bool labelled_tail = false);

// Σ over target tokens of log p(token | everything before it), per row of `labels` (B), float64 on CPU.
at::Tensor sequence_log_likelihood(const CausalLM& fm, const at::Tensor& hidden, const at::Tensor& labels);

}  // namespace lopa
