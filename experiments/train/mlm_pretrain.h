// Masked-LM pretraining (`lopa pretrain --objective mlm`): an encoder with a masked-LM head
// (RobertaForMaskedLM, BertForMaskedLM, …) initialised at random from a config.json and trained on every
// weight with BERT's objective — 15 % of the non-special tokens selected, of those 80 % replaced by the
// mask token, 10 % by a random token, 10 % left as they are, cross-entropy over the full vocabulary at
// the selected positions (transformers' DataCollatorForLanguageModeling) — on a text corpus: the GLUE
// train splits' text (labels never read) and/or text files, one document per line, each document
// `<s> … </s>` under the tokenizer's post-processor, cut to seq_len. AdamW with linear warmup and decay;
// one process. The result is a checkpoint directory (config.json, model.safetensors, the tokenizer's
// files, pretrain.json with the loss record, written last), moved into place when complete.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace lopa {

class Tokenizer;

struct MlmBatch {
  at::Tensor inputs, labels;  // B×T: inputs with the selected tokens replaced; labels -100 where not selected
};

// BERT's masking of ids B×T (int64). `special` B×T (bool) marks positions never selected (special
// tokens, padding). Each other position is selected with probability `prob`; a selected one becomes
// `mask_id` with probability 0.8, else a uniform random id in [0, vocab_size) with probability 0.5,
// else stays. Draws from `rng` only, so a seed reproduces a batch.
MlmBatch mask_tokens(const at::Tensor& ids, const at::Tensor& special, int64_t mask_id, int64_t vocab_size, double prob,
                     std::mt19937_64& rng);

// Documents of the GLUE train splits found under DATA_DIR/glue (SST-2 sentence; RTE, MRPC, MNLI
// sentence1 + "\n" + sentence2; QNLI question + "\n" + sentence; QQP question1 + "\n" + question2),
// tasks without a train file skipped; an empty result is an error naming the directory.
std::vector<std::string> glue_train_documents(const std::string& data_dir);
// Non-empty lines of a text file (one document each); a missing file is an error naming it.
std::vector<std::string> text_documents(const std::string& path);

struct MlmPretrainConfig {
  std::string model_config;   // config.json of a *ForMaskedLM architecture (vocab_size = the tokenizer's)
  std::string tokenizer_dir;  // tokenizer files (copied into the checkpoint); must have a mask token
  int64_t steps = 1000, batch_size = 32, seq_len = 128, warmup_steps = 60;
  double lr = 1e-3, weight_decay = 0.01, max_grad_norm = 1.0, mask_prob = 0.15;
  uint64_t seed = 0, data_seed = 1;
  int64_t log_every = 50;
  double held_out = 0.02;  // share of the documents kept for the held-out loss (at most 512)
};

struct MlmPretrainResult {
  std::string dir;
  double first_loss = 0, final_loss = 0, val_loss = 0, seconds = 0;
  int64_t parameters = 0, documents = 0;
};

// Trains on `documents` and writes `out_dir` (which must not exist). Progress lines go to `progress`.
MlmPretrainResult pretrain_mlm(const MlmPretrainConfig& c, const std::vector<std::string>& documents,
                               const std::string& out_dir, std::ostream& progress);

}  // namespace lopa
