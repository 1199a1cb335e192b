// Encoder: any supported checkpoint as a sequence encoder — its last hidden states (bidirectional for
// BERT, RoBERTa/CodeBERT and CodeSage; causal for a decoder), masked-LM logits where the checkpoint has
// the head, and one pooled vector per sequence by the family's rule (the first token for BERT/RoBERTa/
// CodeBERT, the L2-normalised masked mean for CodeSage, the last real token for a decoder) or a chosen
// one. Positions are those transformers' forward computes without position_ids. Tensor-parallel as
// CausalLM (it holds one); every rank gets the whole result.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "runtime/distributed/process_group.h"
#include "runtime/model/architecture.h"
#include "runtime/model/causal_lm.h"

namespace lopa {

// "auto" → nullopt (the family's rule); "first", "mean", "last"; throws naming `source` otherwise.
std::optional<Pooling> parse_pooling(const std::string& name, const std::string& source);
// `requested` when given, else the architecture's rule; throws when the family has none.
Pooling resolve_pooling(const Architecture& arch, std::optional<Pooling> requested);
// hidden B × T × d, mask B × T (1 real, 0 pad; undefined = all real) → B × d. First: position 0 (as
// transformers' [CLS] / <s> pooling, whatever the mask); Mean: Σ mask·h / Σ mask, then divided by its L2
// norm (at least 1e-12, as torch's F.normalize); Last: the last position whose mask is 1.
at::Tensor pool_hidden(const at::Tensor& hidden, const at::Tensor& mask, Pooling p);
// mask B × T (1 real) → B: each row's last real position (0 for a row with none), what Pooling::Last reads.
at::Tensor last_real_positions(const at::Tensor& mask);

class Encoder {
 public:
  // DIR's checkpoint (any registered architecture) on pg, weights frozen; `pooling` overrides the family's.
  static Encoder load(const std::string& dir, const ProcessGroup& pg, at::ScalarType dtype = at::kFloat,
                      std::optional<Pooling> pooling = std::nullopt);

  const CausalLM& model() const { return model_; }
  CausalLM& model() { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  int64_t hidden_size() const { return model_.hidden_size(); }
  Pooling pooling() const { return pooling_; }
  bool bidirectional() const;
  bool has_lm_head() const;  // masked-LM (or causal-LM) logits available

  // ids B × T (int64), mask B × T (undefined = all real) → last hidden states B × T × d.
  at::Tensor hidden_states(const at::Tensor& ids, const at::Tensor& mask = {}) const;
  // The same from inputs_embeds B × T × d (positions as transformers makes them for inputs_embeds).
  at::Tensor hidden_states_from_embeds(const at::Tensor& inputs_embeds, const at::Tensor& mask = {}) const;
  // hidden … × d → full-vocabulary logits … × V (the masked-LM head of a *ForMaskedLM checkpoint).
  at::Tensor logits(const at::Tensor& hidden) const { return model_.lm_logits(hidden); }
  at::Tensor pool(const at::Tensor& hidden, const at::Tensor& mask) const { return pool_hidden(hidden, mask, pooling_); }
  // ids + mask → pooled embeddings B × d.
  at::Tensor embed(const at::Tensor& ids, const at::Tensor& mask = {}) const;

 private:
  Encoder(CausalLM m, Pooling p) : model_(std::move(m)), pooling_(p) {}
  CausalLM model_;
  Pooling pooling_;
};

}  // namespace lopa
