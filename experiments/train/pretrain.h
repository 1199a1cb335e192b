// Pretraining the demo's foundation model (`lopa pretrain`): a tiny Llama, randomly initialised and
// trained on every weight with the causal-LM loss on the synthetic corpus (synthetic_language.h),
// AdamW with warmup and cosine decay over batches of packed sequences; data parallel (and tensor
// parallel) under mpirun. The result is a complete Hugging Face checkpoint directory (config.json,
// model.safetensors, tokenizer.json, tokenizer_config.json, pretrain.json with the loss record),
// cached by a hash of its configuration and written atomically (temp dir, then rename), so a killed
// run never leaves a directory that looks complete.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace lopa {

struct PretrainConfig {
  // Model (LlamaForCausalLM; the vocabulary is the synthetic lexicon's tokenizer).
  int64_t hidden_size = 128, num_layers = 2, num_heads = 4, num_kv_heads = 2, intermediate_size = 384;
  // Optimisation.
  int64_t steps = 600, batch_size = 32, seq_len = 64, warmup_steps = 40;
  double lr = 4e-3, min_lr_ratio = 0.1, weight_decay = 0.01, max_grad_norm = 1.0;
  uint64_t seed = 0;       // weight init
  uint64_t data_seed = 1;  // corpus stream
  // Not part of the hash (they do not change what is learned, only how it runs).
  int64_t tp = 1;
  std::string device = "cpu";
  int64_t log_every = 50, eval_every = 200;
};

// The checkpoint's identity: 12 hex digits over every key that changes the weights, and the corpus version.
std::string pretrain_hash(const PretrainConfig& c);
// ${LOPA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lopa}
std::string lopa_cache_dir();
// lopa_cache_dir()/demo-fm-<hash>
std::string default_pretrain_dir(const PretrainConfig& c);
// Whether DIR holds a finished pretraining (every file, pretrain.json written last).
bool is_complete_pretrain(const std::string& dir);

struct PretrainResult {
  std::string dir;
  bool reused = false;  // a complete checkpoint was already there: nothing was trained
  double first_loss = 0, final_loss = 0, val_loss = 0;
  double fact_recall = 0;  // share of the world's facts the FM completes right ("kalo likes" -> " red" among colours)
  double seconds = 0;
  int64_t parameters = 0;
};

// Trains unless `out_dir` already holds a complete pretraining (then reads its record). Every rank
// calls it (under mpirun: world = tp x dp). Progress lines go to `progress` on rank 0.
PretrainResult ensure_pretrained(const PretrainConfig& c, const std::string& out_dir, std::ostream& progress);

// Share of the world's facts `model_dir`'s FM completes right, each person x relation prompted with
// the relation's first template up to the value; the value is scored among the relation's values.
double fact_recall(const std::string& model_dir);

// synth-facts accuracy on `split` of `model_dir`'s FM alone, with no method: the 12 candidates scored
// at the prompt's last position. The reference the demo's methods must beat.
double synth_facts_unadapted_accuracy(const std::string& model_dir, const std::string& split);

}  // namespace lopa
