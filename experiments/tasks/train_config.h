// TrainConfig: every key of one training cell (DESIGN.md §3 core keys plus method and trainer keys),
// shared by the command line, INI config files and RUN_DIR/config.ini. The key table
// (experiments/train_keys.h) is the single source of names, defaults, value rules and help; unknown
// keys are errors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "experiments/tasks/train_keys.h"

namespace lopa {

// Every key `lopa train` accepts, in the order config.ini lists them: the training-key table.
inline const std::vector<TrainKey>& train_config_keys() { return train_keys(); }

struct TrainConfig {
  // Core (DESIGN.md §3).
  std::string model, encoder, task, data_dir, method = "lopa";
  int64_t num_virtual_tokens = 10, rank = 1;
  double lr = 1e-3;
  int64_t epochs = 1, max_steps = 0;  // max_steps > 0 wins over epochs
  int64_t batch_size = 8, grad_accum = 1, max_length = 256, seed = 0, tp = 1;
  std::string dtype = "float32";
  std::string autocast = "auto";  // auto: bf16 on CUDA, none on CPU
  int64_t eval_every = 0, save_every = 0;  // 0: at the end only / only on SIGUSR1 and at the end
  // Trainer.
  std::string device = "auto", schedule = "linear";
  int64_t warmup_steps = 0;
  double weight_decay = 0.0, max_grad_norm = 1.0;
  int64_t eval_batch_size = 16, max_train_examples = 0, max_eval_examples = 0;
  int64_t max_new_tokens = 256;  // code tasks: generated tokens per evaluation example
  std::string eval_split;  // comma list; "" = the task's default splits (training_eval_splits)
  double holdout = 0.1;    // GLUE: fraction of train held out as split "holdout"
  int64_t holdout_max = 1000;  // ... and at most this many examples (0: no cap)
  bool save_initial = false;  // RUN_DIR/initial/: parameters before step 1, items, batches
  // LoPA / IDPG.
  std::string lopa_combine = "mul", encoder_pooling = "auto";
  int64_t encoder_max_length = 512;  // encoder input tokens, truncated from the left
  bool train_encoder = false;  // the encoder is trained too (at encoder_lr), else frozen and cached
  double encoder_lr = 1e-5;
  int64_t head_dim = 0;  // h: LoPA default H, IDPG default 256
  double prompt_dropout = 0.1;
  // Prompt tuning / LoPA's Z_S.
  std::string prompt_init = "random", prompt_init_text;
  // LoRA.
  double lora_alpha = 16, lora_dropout = 0.05;
  std::string lora_targets = "q,k,v";
  // Prefix tuning.
  bool prefix_projection = false;
  int64_t prefix_hidden = 0;
  // Task formatting.
  std::string prompt_template, target_template, verbalizers;
  bool skip_bad_rows = false;

  // Parses and validates the resolved key → value map (every key of train_config_keys() present or
  // defaulted) by the table's rules. Throws lopa::Error naming the key for bad values.
  static TrainConfig from_map(const std::map<std::string, std::string>& kv);
  // "key = value" lines, in train_config_keys() order.
  static std::string to_ini(const std::map<std::string, std::string>& kv);
  // Checks each KEY = VALUE line of a `lopa train --config` file by its key's rule (as Boost reads the
  // file: '#' starts a comment, keys and values trimmed), so that a bad value names the file and line:
  // "FILE:LINE: --lr: 'x' is not a number". Lines with other keys are left to the option parser.
  static void check_config_file(const std::string& path);
  // Reads a config.ini written by to_ini (`lopa eval`, `--adapter`, resuming). A key the file lacks (it
  // was written before the key existed) gets value_when_absent: the behaviour of the binary that ran it.
  static std::map<std::string, std::string> read_ini(const std::string& path);
  // Why a run recorded with `recorded` (read_ini of its config.ini) cannot be resumed with `kv`, or "" when
  // it can: every key equal (a key `recorded` lacks counts as value_when_absent), so a checkpoint survives
  // a newer binary that only adds keys, and is refused where the new key changed what the run does.
  static std::string resume_difference(const std::map<std::string, std::string>& recorded,
                                       const std::map<std::string, std::string>& kv);
};

}  // namespace lopa
