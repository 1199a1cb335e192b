// The files of the embedded default (`lopa demo`): the synth-facts data as JSONL, the sweep specs of
// its method comparison (each method over its own learning-rate grid, selected on dev, reported on
// test), and the demo's summary and figure. `lopa demo` pretrains the FM (pretrain.h), writes these,
// has cluster/ plan and run the specs and results/ tabulate the runs.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace lopa {

namespace results {
struct Report;
}

// Writes DIR/{train,dev,test}.jsonl (creating DIR): one {"id","prompt","answer","person","relation"}
// object per instance, in load_synth_facts order.
void write_synth_facts_data(const std::string& dir);

// The learning-rate grids the demo sweeps when not told otherwise: 3 rates per method, spaced x3,
// centred where short probes on the default FM put each method's best dev accuracy (DESIGN.md §9).
const std::map<std::string, std::string>& demo_default_lr_grids();

// The demo's sweep; the defaults are `lopa demo`'s option defaults.
struct DemoSweepOptions {
  std::string out;  // the demo directory: specs OUT/sweep-<method>.ini, runs under OUT/runs/<method>
  std::string fm;   // the FM checkpoint directory
  std::string methods = "pt, idpg, lopa, lora";
  std::string seeds = "0, 1, 2, 3";
  int64_t steps = 600;
  int64_t eval_every = 0;  // 0: steps / 4 (at least 1)
  // Per method, the comma-separated learning rates its cells cross; a method without an entry takes
  // demo_default_lr_grids()'s, and one without either is an error.
  std::map<std::string, std::string> lr_grids;
  int64_t batch_size = 16, num_virtual_tokens = 4, rank = 2;
  int ranks = 1, tp = 1;  // MPI ranks of each cell (mpirun -np) and its tensor-parallel part
};

// Parses `lopa demo --lr` values "METHOD=LR[,LR...]" into `grids` (later ones replace earlier ones).
// Throws lopa::Error naming the value when it has no '=' or no rate.
void parse_lr_grid_option(const std::string& value, std::map<std::string, std::string>& grids);

// Writes one spec per method, OUT/sweep-<method>.ini, for the local executor: [grid] the seeds and
// the method's learning rates, [fixed] only the keys the method reads (rank, m, the prompt
// initialisation where it has them), every cell evaluated on dev (selects) and test (reported).
// Returns the paths in --methods order. Throws lopa::Error when `methods` names none, names one twice
// or names one without a learning-rate grid.
std::vector<std::string> write_demo_specs(const DemoSweepOptions& o);

// Per method and learning rate, the mean dev accuracy over seeds at the evaluation step where that
// mean is best (as the report selects), from every completed run log under `runs_root`.
struct LrPoint {
  std::string method;
  double lr = 0, dev = 0;
  int seeds = 0;
};
std::vector<LrPoint> demo_lr_curve(const std::string& runs_root);

// The demo's closing summary under the report: per method the grid, the selected rate, test mean ±
// std and the per-seed values, ranked by test mean, and the FM alone.
std::string demo_summary(const results::Report& rep, const std::vector<LrPoint>& curve,
                         const std::map<std::string, std::string>& grids, double unadapted_dev);

// The demo's figure as a gnuplot script: only panels that carry information for the sweep (test
// accuracy per method with its seeds; dev accuracy against the learning rate when a method has more
// than one; training loss at the selected rate when the runs logged it). Written to `out_file` (.svg).
std::string demo_plot_script(const results::Report& rep, const std::vector<LrPoint>& curve,
                             const std::string& out_file);
// Runs gnuplot on demo_plot_script. Throws lopa::Error when gnuplot is missing or fails.
void render_demo_plot(const results::Report& rep, const std::vector<LrPoint>& curve, const std::string& out_file);

// An ostream buffer that starts every line written through it with "[demo STAGE | ELAPSED] ": the
// sweep executor's progress lines then say where the demo is and for how long it has run.
class ElapsedPrefixBuf : public std::streambuf {
 public:
  ElapsedPrefixBuf(std::ostream& to, std::string stage, double start_seconds);
  void set_stage(std::string stage) { stage_ = std::move(stage); }

 protected:
  int overflow(int ch) override;
  int sync() override;

 private:
  std::ostream& to_;
  std::string stage_;
  double start_;
  bool at_line_start_ = true;
};
// Seconds on a monotonic clock (ElapsedPrefixBuf's start).
double demo_clock_seconds();

}  // namespace lopa
