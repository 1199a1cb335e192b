// RunLog: the writer of a run's HDF5 log (metrics.h5, DESIGN.md §5, schema_version = 2).
// Written by rank 0 only (the caller decides). Crash-safe by construction: the log lives in an
// in-memory HDF5 file (core driver) and every flush publishes a complete snapshot atomically
// (write metrics.h5.tmp, then rename over metrics.h5), so a run killed at any instant, even with
// SIGKILL in the middle of a flush, leaves the previous snapshot, which h5dump, h5py and
// RunLogReader open. A second writer on the same path is refused (flock on metrics.h5.lock).
//
// Typical use by the trainer:
//   RunInfo info; info.method = "lopa"; info.task = "sst2"; ... info.config_json = resolved.dump();
//   auto log = RunLog::create(run_dir + "/metrics.h5", info);   // or RunLog::open_append(path) to resume
//   log.log_train(step, loss, lr, grad_norm, tokens_per_s, elapsed_s);   // every step: buffered, cheap
//   log.log_eval(step, {{"accuracy", 0.91}, {"loss", 0.31}});            // the run's eval split; flushes
//   log.log_eval("test", step, {{"accuracy", 0.88}});                   // any other split
//   log.set_attr("best_step", int64_t(1200));                           // any extra root attribute
//   log.set_status_completed();  // or set_status_failed(e.what()) / set_status_interrupted(why); all flush
//
// File layout (all names are part of the contract):
//   /  attrs  schema_version (int64 = 1), status ("running"|"completed"|"failed"|"interrupted"),
//             config (JSON text), method, task, model, device, git_sha, started_at, finished_at
//             (ISO-8601 UTC, "" while running), error ("" unless failed or interrupted: the cause):
//             UTF-8 variable-length strings;
//             seed, world_size, tp, dp, trainable_params, total_params: int64
//   /train/step (int64), /train/{loss,lr,grad_norm,tokens_per_s,elapsed_s} (float64): 1-D chunked,
//             unlimited, always of equal length
//   /  attr   eval_split: the split log_eval(step, metrics) writes to, the one the run selects its
//             kept adapter by (e.g. "dev"; GLUE with a holdout: "holdout")
//   /eval/<split>/step (int64), /eval/<split>/<metric> (float64), one group per evaluated split (made
//             at its first evaluation), for every metric name ever logged on that split: equal length
//             within the group; a metric absent from one log_eval call is NaN at that point.
// Schema 1 (before issue 17) had one series, /eval/step and /eval/<metric>; RunLogReader reads both,
// RunLog continues only schema-2 logs.
// Metric values are stored as given; accuracy, f1 and pass_at_1 are fractions in [0, 1].
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lopa::results {

inline constexpr int64_t kSchemaVersion = 2;

// The run's identity, written as root attributes at creation.
struct RunInfo {
  std::string method, task, model, device, git_sha;
  std::string config_json = "{}";  // every resolved key of the run, as a JSON object
  int64_t seed = 0, world_size = 1, tp = 1, dp = 1;
  int64_t trainable_params = 0, total_params = 0;
  std::string eval_split = "dev";  // the run's own evaluation split (log_eval without a split)
};

// When buffered points are published besides the mandatory flushes (every log_eval, set_attr, status
// change, flush(), close/destruction; these also fsync). Policy flushes skip fsync: they survive a
// killed process, not a machine crash. Each flush rewrites the whole file (~48 bytes per train point:
// ~7 ms of CPU and a 5 MB write at 10^5 points). 0 disables a limit.
struct FlushPolicy {
  int64_t every_steps = 0;     // after this many buffered train points
  double every_seconds = 10.0;  // or when the last flush is this old (checked at each log_train)
};

class RunLog {
 public:
  // Creates (or truncates) `path` with status "running". Throws lopa::Error if another writer holds it.
  static RunLog create(const std::string& path, const RunInfo& info, FlushPolicy policy = {});
  // Reopens an existing log to continue it (resume): points are appended after the existing ones,
  // status is set back to "running". Throws lopa::Error if the file is missing, not a schema-2 log,
  // or held by another writer.
  static RunLog open_append(const std::string& path, FlushPolicy policy = {});

  RunLog(RunLog&&) noexcept;
  RunLog& operator=(RunLog&&) noexcept;
  ~RunLog();  // flushes and releases the lock; a run that never set a final status stays "running"

  // One training step; buffered in memory, published per FlushPolicy.
  void log_train(int64_t step, double loss, double lr, double grad_norm, double tokens_per_s, double elapsed_s);
  // One evaluation (metric name -> value) on the run's eval split; publishes everything buffered so far.
  void log_eval(int64_t step, const std::map<std::string, double>& metrics);
  // One evaluation of `split` (a name without '/'); publishes everything buffered so far.
  void log_eval(const std::string& split, int64_t step, const std::map<std::string, double>& metrics);

  // Extra root attributes, e.g. best_step; overwrite any previous value of the same name.
  void set_attr(const std::string& name, const std::string& value);
  void set_attr(const std::string& name, int64_t value);
  void set_attr(const std::string& name, double value);

  void set_status_completed();                        // status=completed, finished_at=now; flushes
  void set_status_failed(const std::string& error);   // status=failed, error, finished_at=now; flushes
  // status=interrupted (stopped at a checkpoint, resumable: SIGUSR1), error=reason, finished_at=now; flushes.
  void set_status_interrupted(const std::string& reason);

  // Drops every train and eval point logged at a step after `step` and publishes: a run resumed from
  // its checkpoint at `step` then logs the replayed steps once, whatever the log held beyond it.
  void truncate_after(int64_t step);

  void flush();   // publishes all buffered points now
  void close();   // flush + release; the object is unusable afterwards (idempotent)

  const std::string& path() const;
  int64_t num_train_points() const;  // written + buffered
  int64_t num_eval_points() const;  // over every split

  struct Impl;

 private:
  explicit RunLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Current time as ISO-8601 UTC ("2026-11-26T21:40:03Z").
std::string utc_now_iso8601();

}  // namespace lopa::results
