// `lopa bench train`: the trainer's step (experiments/train_step.h, AdamW, clipping) timed on a
// synthetic fixed-seed token batch, with throughput, MFU against the matmul peak measured in the same
// run, checkpoint load cost against reading its bytes, and peak RSS per rank against an estimate.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace lopa {

struct ProcessGroup;

struct TrainBenchOptions {
  std::string model, tokenizer;  // tokenizer dir: "" = the model dir
  std::string method = "lopa", dtype = "float32", lora_targets = "q,k,v";
  int64_t batch_size = 4, seq_len = 128;  // seq_len: positions the FM sees, soft prompt included
  int64_t steps = 5, warmup = 1;          // timed steps after untimed warm-up steps
  int64_t target_tokens = 1;              // label tokens per row (the rest is prompt, labelled -100)
  int64_t num_virtual_tokens = 10, rank = 4;
  int64_t seed = 0;
};

// Runs on every rank of `pg` (tp = pg.tp_size, dp must be 1); returns the JSON record (meaningful on
// every rank, printed by rank 0).
nlohmann::ordered_json run_train_bench(const TrainBenchOptions& opt, const ProcessGroup& pg);

}  // namespace lopa
