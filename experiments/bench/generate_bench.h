// `lopa bench generate`: prefill and KV-cached greedy decode throughput of the runtime on a fixed-seed
// random prompt, with FLOP/s and MFU against the matmul peak measured in the same run, and peak RSS.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace lopa {

struct ProcessGroup;

struct GenerateBenchOptions {
  std::string model, dtype = "float32";
  int64_t batch_size = 1, prompt_len = 64, new_tokens = 64, repeats = 3;
  int64_t seed = 0;
};

// Runs on every rank of `pg` (the model tp-sharded over it); best of `repeats` for each phase.
nlohmann::ordered_json run_generate_bench(const GenerateBenchOptions& opt, const ProcessGroup& pg);

}  // namespace lopa
