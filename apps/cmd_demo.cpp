// `lopa demo`: the embedded default, end to end with nothing downloaded. Pretrains (or reuses) the
// tiny FM on the synthetic language, writes the synth-facts task data, runs each method over its own
// learning-rate grid x seeds through the local executor, then prints the report (selected on dev,
// reported on test, paired comparisons) and the demo's summary and draws its figure. Option parsing
// and calls only: what the demo writes and computes is in experiments/demo/demo.h.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/pretrain_options.h"
#include "cluster/local_executor.h"
#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "experiments/demo/demo.h"
#include "experiments/train/pretrain.h"
#include "experiments/tasks/synthetic_task.h"
#include "results/report.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"

namespace lopa::app {

namespace fs = std::filesystem;

int cmd_demo(const Args& args) {
  const DemoSweepOptions d;  // the option defaults
  std::string grids_help = "a method's learning-rate grid, METHOD=LR[,LR...] (repeatable); defaults:";
  for (const auto& [m, g] : demo_default_lr_grids()) grids_help += " " + m + "=" + g + ";";
  po::options_description desc("demo");
  desc.add_options()
      ("out", po::value<std::string>()->default_value("lopa-demo"), "output directory: data, sweep runs, table, plot")
      ("fm", po::value<std::string>()->default_value(""),
       "use this FM checkpoint directory instead of the pretrained default (default: pretrain or reuse it, cached)")
      ("methods", po::value<std::string>()->default_value(d.methods), "methods of the sweep")
      ("seeds", po::value<std::string>()->default_value(d.seeds), "seeds of the sweep")
      ("steps", po::value<int64_t>()->default_value(d.steps), "training steps of each cell")
      ("eval-every", po::value<int64_t>()->default_value(d.eval_every),
       "evaluate dev and test every N steps (0: steps / 4)")
      ("lr", po::value<std::vector<std::string>>()->composing(), grids_help.c_str())
      ("batch-size", po::value<int64_t>()->default_value(d.batch_size), "batch size of every cell")
      ("num-virtual-tokens", po::value<int64_t>()->default_value(d.num_virtual_tokens), "m of PT, IDPG and LoPA")
      ("rank", po::value<int64_t>()->default_value(d.rank), "r of LoPA and LoRA")
      ("ranks", po::value<int>()->default_value(d.ranks), "MPI ranks of each cell (mpirun -np)")
      ("tp", po::value<int>()->default_value(d.tp), "tensor-parallel ranks of each cell (the rest are data parallel)")
      ("jobs", po::value<int>()->default_value(0), "cells at once (0: cores / ranks)");
  add_pretrain_options(desc, PretrainConfig{});
  auto parsed = parse_options("demo", "[--out DIR] [--steps N] [OPTIONS]", desc, args);
  if (parsed.help) return 0;
  const auto& vm = parsed.vm;
  const double t0 = demo_clock_seconds();
  ElapsedPrefixBuf prefixed(std::cout, "1/4", t0);
  std::ostream log(&prefixed);
  const std::string out = fs::absolute(vm["out"].as<std::string>()).lexically_normal().string();
  fs::create_directories(out);

  // 1. The foundation model.
  std::string fm = vm["fm"].as<std::string>();
  if (fm.empty()) {
    const auto c = pretrain_config_from(vm);
    fm = default_pretrain_dir(c);
    log << "foundation model: " << fm << std::endl;
    const auto r = ensure_pretrained(c, fm, log);
    if (r.reused)
      log << "reusing the cached FM (pretrained in " << std::fixed << std::setprecision(0) << r.seconds << " s: loss "
          << std::setprecision(3) << r.first_loss << " -> " << r.final_loss << ", fact recall " << std::setprecision(1)
          << 100 * r.fact_recall << "%)" << std::defaultfloat << std::endl;
  } else {
    fm = fs::absolute(fm).string();
    log << "foundation model: " << fm << " (given)" << std::endl;
  }

  // 2. The task, and what the FM does on it alone.
  prefixed.set_stage("2/4");
  const auto data = out + "/data/synth-facts";
  write_synth_facts_data(data);
  const auto example = load_synth_facts("dev").examples.at(0);
  const double unadapted = synth_facts_unadapted_accuracy(fm, "dev");
  log << "task synth-facts: " << load_synth_facts("train").examples.size() << " train / "
      << load_synth_facts("dev").examples.size() << " dev / " << load_synth_facts("test").examples.size()
      << " test instances over disjoint people, e.g. \"" << synth_facts_prompt(example) << "\" -> \"" << example.label
      << "\"; 12 candidates: chance 8.3%, knowing only the relation 25%, the FM alone " << std::fixed
      << std::setprecision(1) << 100 * unadapted << "%" << std::defaultfloat << "; data in " << data << std::endl;

  // 3. The sweep: one spec per method over its own learning rates, each under OUT/runs/<method>.
  prefixed.set_stage("3/4");
  DemoSweepOptions so;
  so.out = out;
  so.fm = fm;
  so.methods = vm["methods"].as<std::string>();
  so.seeds = vm["seeds"].as<std::string>();
  so.steps = vm["steps"].as<int64_t>();
  so.eval_every = vm["eval-every"].as<int64_t>();
  if (vm.count("lr"))
    for (const auto& v : vm["lr"].as<std::vector<std::string>>()) parse_lr_grid_option(v, so.lr_grids);
  so.batch_size = vm["batch-size"].as<int64_t>();
  so.num_virtual_tokens = vm["num-virtual-tokens"].as<int64_t>();
  so.rank = vm["rank"].as<int64_t>();
  so.ranks = vm["ranks"].as<int>();
  so.tp = vm["tp"].as<int>();
  std::vector<cluster::Plan> plans;
  std::map<std::string, std::string> grids;
  size_t cells = 0;
  for (const auto& spec : write_demo_specs(so)) {
    plans.push_back(cluster::make_plan(cluster::read_sweep_spec(spec)));
    cells += plans.back().cells.size();
    const auto& s = plans.back().spec;
    std::string g;
    for (const auto& lr : s.grid.at("lr")) g += (g.empty() ? "" : ", ") + lr;
    grids[s.grid.at("method").at(0)] = g;
    log << s.grid.at("method").at(0) << ": lr " << g << " x seeds " << so.seeds << " (" << plans.back().cells.size()
        << " cells), spec " << spec << std::endl;
  }
  log << cells << " cells x " << so.steps << " steps, each `mpirun -np " << so.ranks << "` with tp " << so.tp
      << "; dev and test evaluated every " << (so.eval_every ? so.eval_every : std::max<int64_t>(1, so.steps / 4))
      << " steps" << std::endl;
  cluster::LocalRunOptions lo;
  lo.jobs = vm["jobs"].as<int>();
  lo.run_report = false;
  int rc = 0;
  for (const auto& plan : plans) {
    const int r = cluster::run_local(plan, lo, log);
    LOPA_CHECK(r != 130, "lopa demo: interrupted (run it again to resume: completed cells are kept)");
    if (r != 0) rc = r;
  }

  // 4. The report (selected on dev, reported on test), the summary and the figure.
  prefixed.set_stage("4/4");
  log << "report" << std::endl;
  results::ReportOptions ro;
  ro.with_train = true;
  ro.select_by = "dev";
  ro.report_split = "test";
  const auto rep = results::build_report(out + "/runs", ro);
  const auto curve = demo_lr_curve(out + "/runs");
  const auto text = results::format_report(rep, "md") + "\n" + demo_summary(rep, curve, grids, unadapted);
  std::cout << "\n" << text << std::endl;
  write_file_atomic(out + "/results.md", text);
  const auto plot = out + "/demo.svg";
  render_demo_plot(rep, curve, plot);
  log << "done. Table: " << out << "/results.md, plot: " << plot << ", run logs: " << out
      << "/runs/<method>/<cell>/metrics.h5, sweep logs: " << out << "/runs/<method>/sweep/logs" << std::endl;
  LOPA_CHECK(rc == 0, "lopa demo: some cells failed (see the summary above and their logs)");
  return 0;
}

}  // namespace lopa::app
