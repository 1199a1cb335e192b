// RunLogReader: reads a whole run log (metrics.h5, schema_version 2 or 1, see run_log.h) into memory:
// every root attribute with its stored type, the training series and the evaluation series per split.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lopa::results {

struct TrainSeries {
  std::vector<int64_t> step;
  std::vector<double> loss, lr, grad_norm, tokens_per_s, elapsed_s;  // each as long as step
};

struct EvalSeries {
  std::vector<int64_t> step;
  std::map<std::string, std::vector<double>> metrics;  // name -> one value per step (NaN = not logged)
};

struct RunData {
  std::string path;
  nlohmann::json attrs = nlohmann::json::object();  // every root attribute: string, int64 or double
  TrainSeries train;
  // The evaluations of each split (v2: /eval/<split>/...). A schema-1 log holds one series: it is read
  // as the split named by the config's eval-split (else "dev"), and its "<split>_<metric>" series
  // (what `lopa eval --split` recorded) as that split's, at the steps where they were logged.
  std::map<std::string, EvalSeries> splits;
  // The run's own evaluation split (v2: the eval_split attribute; v1: as above) and its series: the
  // evaluations the trainer chose its kept adapter by (v1: the whole /eval group, as logged).
  std::string eval_split;
  EvalSeries eval;

  // Typed attribute access with a default when absent (or of another type).
  std::string attr_string(const std::string& name, const std::string& fallback = "") const;
  int64_t attr_int(const std::string& name, int64_t fallback = 0) const;
  // The `config` attribute parsed as JSON (an empty object when absent or not JSON).
  nlohmann::json config() const;
};

class RunLogReader {
 public:
  // Reads `path`; with_train = false skips the /train series (the report's table needs only /eval).
  // Throws lopa::Error naming the file and the problem (not HDF5, not a run log, unequal lengths...).
  static RunData read(const std::string& path, bool with_train = true);
};

}  // namespace lopa::results
