// Aggregation of many run logs into the paper's tables: every metrics.h5 under a root is read, runs
// that differ only in seed are grouped, and each (method row, model, task) cell holds the mean, the
// sample standard deviation (n-1 denominator) and n over seeds. Rows are methods, split by prompt
// length m and rank r where the method has them; columns are tasks, grouped by model. Runs that are
// unreadable, still running, failed or lack the metric are listed separately, never dropped.
// Selection on one split and reporting on another (select_by / report_split): in each cell, the
// configuration (e.g. learning rate) and evaluation step with the best mean select_by metric over
// seeds is chosen, and its report_split metric is shown; per column, methods are compared seed by
// seed (paired).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lopa::results {

struct ReportOptions {
  std::string metric;             // "" = each task's primary metric (accuracy; f1 for mrpc/qqp; pass_at_1 for code)
  std::string select = "best";    // "best": best evaluation of a run (as the paper reports); "last": final one.
                                  // Applies to the run's own evaluation split when select_by is empty.
  bool with_train = false;        // also read the training-loss series (needed for plots)
  // Split mode: choose the configuration and step by the mean `select_by` metric over seeds, report
  // the `report_split` metric of that choice (both required together; equal names = best of the
  // reported split, labelled as such).
  std::string select_by, report_split;
  // Configuration keys that do not separate experiments in this report (e.g. device, autocast: the
  // same protocol run on the CPU and on a GPU): runs that differ only in these and the seed share one
  // group, and each cell names the values it merged. Keys that make rows or columns cannot be merged.
  std::vector<std::string> merge_keys;
};

// A run that is not in the table, and why.
struct ExcludedRun {
  std::string path, status, reason;
};

struct Column {
  std::string model, task, metric;  // model = its display name (last path component)
};

struct Row {
  std::string method, label;          // label e.g. "LoPA (m=10, r=4)"
  std::string m, r;                   // "" where the method has no such hyper-parameter
  std::string server_adapter;         // "yes" (lora, fft, prefix), "no" (pt, idpg, lopa), "?" otherwise
  std::map<std::string, int64_t> trainable_params;  // model -> trainable parameter count
};

struct Cell {
  int row = -1, col = -1;
  std::vector<double> values;   // one per seed (the selected metric of each run)
  std::vector<int64_t> seeds;
  double mean = 0, std = 0;     // std: sample standard deviation (n-1); NaN when n = 1
  int n = 0;
  int num_configs = 1;          // groups (configs differing in more than seed) that fell in this cell
  std::string chosen_config;    // when num_configs > 1: the keys that distinguish the group shown
  bool best = false;            // best mean in its column
  // Training loss averaged over the seeds at the steps all of them logged (when with_train).
  std::vector<int64_t> loss_step;
  std::vector<double> loss_mean;
  // Split mode: the chosen evaluation step and the mean select_by metric there (NaN otherwise); the
  // hyperparameters the cell used (chosen_config then always names at least lr).
  int64_t selected_step = -1;
  double select_mean = std::nan("");
  // With merge_keys: the merged keys' values of the cell's runs and their seeds, e.g.
  // "device=cpu (seeds 0, 2); device=cuda (seed 1)"; "" when every run had the same values.
  std::string merged;
};

// One column's methods compared seed by seed: a and b at their best rows (by the selection split in
// split mode, by the shown mean otherwise), paired on the seeds both have. Differences are a - b,
// signed so that positive means a is better; "exceeds the seed noise" = a two-sided paired t-test at
// 5 % (|t| > t(0.975, n-1)); undecidable with fewer than 2 pairs.
struct PairedComparison {
  int col = -1;
  std::string a, b;                 // methods
  int pairs = 0, wins = 0, losses = 0, ties = 0;
  double mean_diff = 0, sd_diff = 0, t = 0;  // sd: sample (n-1); t = mean / (sd / sqrt(n))
  bool exceeds_noise = false;
};

struct Comparison {
  std::string other;        // the method compared against LoPA
  int cells = 0;            // (task, model) cells where both have a value
  int wins = 0, ties = 0;   // LoPA strictly better / equal
  double mean_rel_improvement = 0;  // mean over cells of (lopa - other) / |other|, as a fraction
};

struct Report {
  std::string root, select;        // root: the --root directories, comma-separated
  bool lower_is_better = false;     // true when the metric is a loss
  std::vector<Row> rows;
  std::vector<Column> cols;
  std::vector<Cell> cells;          // at most one per (row, col)
  std::vector<Comparison> comparisons;  // empty when there is no LoPA run
  std::vector<PairedComparison> paired; // per column: LoPA against each other method (every pair without LoPA)
  std::string select_by, report_split;  // split mode (see ReportOptions), "" otherwise
  std::vector<std::string> merge_keys;  // see ReportOptions
  std::vector<ExcludedRun> excluded;
  std::vector<std::string> notes;   // e.g. cells where several configurations were aggregated separately
  int runs_found = 0, runs_used = 0;

  const Cell* cell(int row, int col) const;
};

// Reads every metrics.h5 under `root` (recursively) and aggregates it. Throws only when `root` is not
// a directory or an option is invalid; a bad run becomes an ExcludedRun.
Report build_report(const std::string& root, const ReportOptions& options);
// The same over several roots read as one (e.g. a CPU archive and a GPU archive). A seed found twice
// in one configuration is used once (the first path in sorted order); the other is listed as excluded.
Report build_report(const std::vector<std::string>& roots, const ReportOptions& options);

// The table, comparison summary and exclusions in one of "md", "csv", "latex". CSV holds the table
// only (the caller prints the rest elsewhere: see format_report_notes); LaTeX carries the summary and
// exclusions as % comments so the output still compiles.
std::string format_report(const Report& report, const std::string& format);
// Comparison summary, paired comparisons, selected configurations and exclusion list as plain text lines.
std::string format_report_notes(const Report& report);

// The display name of a method ("lopa" -> "LoPA") and whether it needs a server-side adapter.
std::string method_display_name(const std::string& method);
std::string method_server_adapter(const std::string& method);

// The 97.5 % quantile of Student's t with `df` degrees of freedom (df >= 1): the two-sided 5 % bound.
double t_critical_975(int df);
// Paired comparison of two per-seed value maps (seed -> value), positive = a better.
PairedComparison paired_comparison(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b,
                                   bool lower_is_better);

}  // namespace lopa::results
