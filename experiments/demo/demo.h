// The files of the embedded default (`lopa demo`): the synth-facts data as JSONL and the sweep specs of
// its method comparison. `lopa demo` pretrains the FM (pretrain.h), writes these, then has cluster/
// plan and run the specs and results/ tabulate the runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lopa {

// Writes DIR/{train,dev,test}.jsonl (creating DIR): one {"id","prompt","answer","person","relation"}
// object per instance, in load_synth_facts order.
void write_synth_facts_data(const std::string& dir);

// The demo's sweep; the defaults are `lopa demo`'s option defaults.
struct DemoSweepOptions {
  std::string out;  // the demo directory: specs OUT/sweep-<group>.ini, runs under OUT/runs/<group>
  std::string fm;   // the FM checkpoint directory
  std::string methods = "pt, idpg, lopa, lora";
  std::string seeds = "0, 1";
  int64_t steps = 400;
  int64_t eval_every = 0;  // 0: steps / 4 (at least 1)
  // One learning rate per group: LoRA's best rate on synth-facts differs from the prompt methods'.
  std::string lr = "0.03", lora_lr = "0.01";
  int64_t batch_size = 16, num_virtual_tokens = 4, rank = 2;
  int ranks = 2, tp = 2;  // MPI ranks of each cell (mpirun -np) and its tensor-parallel part
};

// Writes one spec per group that has methods: OUT/sweep-prompts.ini (every method but lora, at `lr`)
// and OUT/sweep-lora.ini (lora, at `lora_lr`), for the local executor; rank, m and the prompt
// initialisation only where a method of the group reads them. Returns their paths in that order.
// Throws lopa::Error when `methods` names none.
std::vector<std::string> write_demo_specs(const DemoSweepOptions& o);

}  // namespace lopa
