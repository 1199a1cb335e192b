// Grid expansion: a spec's cells (one training run each) with stable ids, and where each cell's files
// live under the sweep root. Keys a method does not use are neither crossed nor passed for that
// method (rank for pt, num-virtual-tokens for lora, ...), so no two cells are the same run.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "cluster/sweep_spec.h"

namespace lopa::cluster {

struct Cell {
  int index = 0;   // position in the plan (SLURM array index of a full submission)
  std::string id;  // readable slug + "-" + 8 hex digits of the hash of `keys`, e.g. stories260K-sst2-lopa-m5-r1-s0-1a2b3c4d
  std::map<std::string, std::string> keys;  // every training key given to the cell (its config file)
};

struct Plan {
  SweepSpec spec;
  std::vector<Cell> cells;
  // Doubts that do not stop the sweep: path keys (model, encoder, data-dir) naming nothing here (they
  // may exist only where the cells run, e.g. on the cluster), with the hub id [download] gives.
  std::vector<std::string> warnings;
};

// Expands the grid: per method, [grid] and that method's [grid.METHOD] axes crossed, [fixed] for the
// other keys. Throws lopa::Error naming the spec file when a [grid] or [fixed] key is used by no method
// of the sweep, a [fixed] key is replaced by [grid.METHOD] in every method that uses it, or tp does not
// divide ranks-per-cell. Each warning is also written as a line to `warnings_to` when given (`lopa
// sweep plan` passes stderr); a missing model or encoder that [download] maps names its hub id and the
// huggingface-cli command that fetches it.
Plan make_plan(const SweepSpec& spec, std::ostream* warnings_to = nullptr);

// FNV-1a, 64 bit (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
uint64_t fnv1a64(const std::string& text);

// "key=value\n" for every key in byte order of the keys: the text a cell id hashes.
std::string canonical_text(const std::map<std::string, std::string>& keys);

// The id of a cell with these keys: slug (model basename, task, method, m<m>, r<r>, s<seed> — those
// present) + "-" + first 8 hex digits of fnv1a64(canonical_text(keys)). Depends on the keys only.
std::string cell_id(const std::map<std::string, std::string>& keys);

// Where things live: RUN_DIR = root/<cell-id>; the executors' own files under root/sweep/.
struct SweepPaths {
  std::string root;
  std::string dir() const { return root + "/sweep"; }
  std::string run_dir(const std::string& id) const { return root + "/" + id; }
  std::string config(const std::string& id) const { return dir() + "/configs/" + id + ".ini"; }
  std::string log(const std::string& id) const { return dir() + "/logs/" + id + ".log"; }
  std::string state(const std::string& id) const { return dir() + "/state/" + id + ".json"; }
  std::string spec_copy() const { return dir() + "/spec.ini"; }
  std::string plan_json() const { return dir() + "/plan.json"; }
  std::string manifest() const { return dir() + "/cells.tsv"; }
  std::string array_script() const { return dir() + "/array.sbatch"; }
  std::string report_script() const { return dir() + "/report.sbatch"; }
  std::string jobs_json() const { return dir() + "/jobs.json"; }
  std::string report_output() const { return dir() + "/report.txt"; }
};

inline SweepPaths paths_of(const SweepSpec& spec) { return SweepPaths{spec.root}; }

// The plan as JSON text: {"name","root","spec","cells":[{"index","id","run_dir","config","keys":{}}]}.
std::string plan_json(const Plan& plan);

// The INI text of a cell's config file (`lopa train --config`): one "key = value" line per key.
std::string cell_config_text(const Plan& plan, const Cell& cell);

// Writes root/sweep/{spec.ini,plan.json,configs/<id>.ini} (creating directories). Existing config
// files are rewritten with the same content.
void write_plan_files(const Plan& plan);

}  // namespace lopa::cluster
