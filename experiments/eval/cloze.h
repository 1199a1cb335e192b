// The paper's GLUE setting on a masked-LM FM (RobertaForMaskedLM / BertForMaskedLM as the frozen FM):
// each example is one cloze text (experiments/tasks/cloze_templates.h) with the FM's special tokens,
// the soft prompt goes right after the first token (<s> / [CLS]), the loss is cross-entropy over the
// full vocabulary at the <mask> position against the gold label word, and the prediction is the
// argmax over the label words' logits there. Prefix tuning's KV prefix is visible to every position
// (bidirectional attention). The decoder path (batching.h, prompt_method.h, evaluate.h) is untouched.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/eval/batching.h"
#include "experiments/eval/evaluate.h"

namespace lopa {

class CausalLM;
class Method;
class Tokenizer;

// A bidirectional model with a vocabulary head: GLUE runs as cloze on it.
bool is_masked_lm(const CausalLM& fm);

// Cloze items of a GLUE task: prompt = the FM tokenizer's encoding of the cloze text with special
// tokens (cut from the right to max_length, its last token kept; a <mask> cut off goes to the
// second-to-last position, as the official code does), mask_pos, targets = one single-token target per
// label (" " + word; `tmpl.verbalizers`, when given, are '|'-separated words tokenized as written),
// encoder_input = the same text under the encoder's tokenizer (special tokens added, cut like the
// prompt to encoder_max_length; the FM's ids without an encoder tokenizer). `tmpl.prompt` overrides the cloze template. Errors name the task and the word or template.
std::vector<TrainItem> make_cloze_items(const std::string& task, const std::vector<Example>& examples,
                                        const TemplateConfig& tmpl, const Tokenizer& tok, const Tokenizer* encoder_tok,
                                        int64_t max_length, int64_t encoder_max_length);

// items[idx] right-padded: ids, mask; labels -100 except the gold word's id at each mask position
// (unlabelled rows keep -100). One row per item; num_target_tokens = labelled rows.
TokenBatch cloze_batch(const std::vector<TrainItem>& items, const std::vector<int64_t>& idx, int64_t pad_id);

// FM hidden states with `method` applied: the soft prompt inserted after position 0, positions as the
// architecture makes them for inputs_embeds. `labels` gets the matching B×(P+T) labels.
at::Tensor cloze_forward(Method& method, CausalLM& fm, const TokenBatch& batch, const at::Tensor& encoder_embedding,
                         at::Tensor& labels);

// Full-vocabulary logits (float32) at the labelled positions, row order: R×V, and their labels R.
std::pair<at::Tensor, at::Tensor> mask_logits(const CausalLM& fm, const at::Tensor& hidden, const at::Tensor& labels);

// Mean cross-entropy at the mask positions (0-d float), over the full vocabulary.
at::Tensor cloze_loss(const CausalLM& fm, const at::Tensor& hidden, const at::Tensor& labels);

// The training step's forward + loss + backward of loss·scale, as micro_batch_backward (train_step.h).
double cloze_micro_batch_backward(Method& method, CausalLM& fm, const TokenBatch& batch,
                                  const at::Tensor& encoder_embedding, double scale, at::ScalarType autocast = at::kFloat);

// Scores the items: per item the label words' logits at the mask (argmax = prediction, ties to the
// lowest label), metrics through the task's scorer plus "loss", the mean full-vocabulary cross-entropy of the gold word.
EvalResult evaluate_cloze(const std::string& task, const std::vector<Example>& examples,
                          const std::vector<TrainItem>& items, Method& method, CausalLM& fm,
                          const at::Tensor& encoder_embeddings, int64_t batch_size, int64_t pad_id);

// Checks before any training that the FM can fill its role for `task` with the prompt template given:
// a masked-LM FM runs GLUE only (not a code-generation task), a decoder refuses a <mask> template,
// a base encoder without a vocabulary head cannot be the FM.
void check_fm_role(const CausalLM& fm, const std::string& model_dir, const std::string& task,
                   const std::string& prompt_template);

}  // namespace lopa
