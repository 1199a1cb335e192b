// lopa report: aggregates every run log under --root into a table (mean ± std over seeds), a LoPA
// comparison summary, paired per-seed comparisons and the list of runs left out; --select-by SPLIT
// --report SPLIT chooses configurations and steps on one split and shows another; optionally draws
// the figures (--plot); several --root directories are read as one, and --merge-keys pools runs that
// differ only in the named keys (the same protocol on the CPU and a GPU).
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/options.h"
#include "results/plot.h"
#include "results/report.h"
#include "runtime/base/error.h"

namespace lopa::app {

int cmd_report(const Args& args) {
  po::options_description desc("report");
  desc.add_options()
      ("root", po::value<std::vector<std::string>>()->required()->composing(),
       "directory searched recursively for metrics.h5 run logs (repeatable: several roots are read as one)")
      ("format", po::value<std::string>()->default_value("md"), "md | csv | latex")
      ("metric", po::value<std::string>()->default_value(""),
       "eval metric to tabulate (default: per task, accuracy; f1 for mrpc/qqp; pass_at_1 for mbpp/cruxeval)")
      ("select", po::value<std::string>()->default_value("best"),
       "without --select-by: best (best evaluation of each run on its own split: optimistic) | last")
      ("select-by", po::value<std::string>()->default_value(""),
       "split whose mean over seeds chooses each cell's configuration and evaluation step (e.g. dev; GLUE: holdout)")
      ("report", po::value<std::string>()->default_value(""),
       "split whose metric is shown for that choice (e.g. test; GLUE: dev); needs --select-by")
      ("merge-keys", po::value<std::string>()->default_value(""),
       "comma-separated configuration keys that do not separate runs in this table (e.g. device,autocast: one "
       "protocol run on the CPU and a GPU); each cell names the values it pooled")
      ("plot", po::value<std::string>()->default_value(""), "also draw the figures into FILE (.svg or .png; gnuplot)");
  auto parsed = parse_options("report", "--root DIR [--root DIR...] [--merge-keys K,K] [--format md|csv|latex] [--metric NAME] [--select best|last | --select-by SPLIT --report SPLIT] [--plot FILE]",
                              desc, args);
  if (parsed.help) return 0;
  const auto& vm = parsed.vm;
  const std::string format = vm["format"].as<std::string>();
  LOPA_CHECK(format == "md" || format == "csv" || format == "latex", "--format ", format, ": expected md, csv or latex");

  results::ReportOptions opts;
  opts.metric = vm["metric"].as<std::string>();
  opts.select = vm["select"].as<std::string>();
  opts.select_by = vm["select-by"].as<std::string>();
  opts.report_split = vm["report"].as<std::string>();
  std::stringstream keys(vm["merge-keys"].as<std::string>());
  for (std::string k; std::getline(keys, k, ',');) {
    LOPA_CHECK(!k.empty(), "--merge-keys ", vm["merge-keys"].as<std::string>(), ": an empty key");
    opts.merge_keys.push_back(k);
  }
  const std::string plot = vm["plot"].as<std::string>();
  opts.with_train = !plot.empty();
  const results::Report rep = results::build_report(vm["root"].as<std::vector<std::string>>(), opts);

  std::cout << results::format_report(rep, format);
  // CSV stays a pure table on stdout; the summary and the runs left out go to stderr, never dropped.
  if (format == "csv") std::cerr << results::format_report_notes(rep);
  if (!plot.empty()) {
    results::render_plots(rep, plot);
    std::cerr << "lopa report: wrote " << plot << "\n";
  }
  return 0;
}

}  // namespace lopa::app
