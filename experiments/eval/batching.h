// From task examples to tensors: each example becomes a prompt and its candidate targets (GLUE: one
// verbalizer per label; story-names: the two names), tokenized once; training batches hold the prompt
// followed by the gold target with labels only on target tokens (-100 elsewhere), right-padded;
// scoring batches hold one row per (example, candidate).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/tasks/task.h"
#include "experiments/tasks/templates.h"

namespace lopa {

class Tokenizer;

struct TrainItem {
  std::string id;                       // prediction id (GLUE idx, story id)
  std::vector<int64_t> prompt;          // token ids, BOS first when the tokenizer adds one
  std::vector<std::vector<int64_t>> targets;  // candidate targets' ids
  std::vector<std::string> target_labels;     // the label written in predictions for each candidate
  int64_t gold = -1;                    // index of the right candidate (-1: unlabeled)
  std::vector<int64_t> encoder_input;   // ids the encoder sees (the prompt, with the encoder's tokenizer)
  int64_t mask_pos = -1;  // cloze items (masked-LM FM, eval/cloze.h): the <mask> in `prompt`; -1 otherwise
};

// Examples of `task` (a GLUE task, an in-domain task, or a code task whose one target is the reference)
// as items. max_length bounds prompt + longest target (prompt cut from the left, BOS kept; a code
// target longer than 3/4 of max_length is cut at its end). `encoder_tok` may be null (encoder input =
// prompt); otherwise the encoder reads the same prompt text through encoder_input_ids.
std::vector<TrainItem> make_items(const std::string& task, const std::vector<Example>& examples,
                                  const TemplateConfig& tmpl, const Tokenizer& tok, const Tokenizer* encoder_tok,
                                  int64_t max_length, int64_t encoder_max_length = 512);

// An encoder's input for `text` as the official code makes it: tokenizer(text) with the encoder's special
// tokens (its post-processor, e.g. <s> … </s>, [CLS] … [SEP]), at most max_length ids, the text truncated
// from the left and the special tokens kept.
std::vector<int64_t> encoder_input_ids(const Tokenizer& tok, const std::string& text, int64_t max_length);

// A padded batch: ids and mask B×T, labels B×T (-100 on prompt and padding), and per row the item index
// and candidate index (scoring) plus the number of target tokens.
struct TokenBatch {
  at::Tensor ids, mask, labels;
  std::vector<int64_t> item, candidate, target_tokens;
  int64_t num_target_tokens = 0;
};

// Rows: items[idx] with their gold target.
TokenBatch training_batch(const std::vector<TrainItem>& items, const std::vector<int64_t>& idx, int64_t pad_id);
// Rows: every (item, candidate) pair of the given items, in order.
TokenBatch scoring_batch(const std::vector<TrainItem>& items, const std::vector<int64_t>& idx, int64_t pad_id);
// Encoder inputs of the items, right-padded: ids and mask B×T.
std::pair<at::Tensor, at::Tensor> encoder_batch(const std::vector<TrainItem>& items, const std::vector<int64_t>& idx,
                                                int64_t pad_id);

// Evaluation order: 0 … items.size() - 1 sorted by the item's longest scored row (prompt + longest
// target), longest first (ties keep their order), so that consecutive items batch with little padding.
std::vector<int64_t> longest_first(const std::vector<TrainItem>& items);

// The data order: a permutation of [0, n) for `epoch`, the same on every rank and platform (own
// Fisher-Yates over mt19937_64(seed, epoch)).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace lopa
