// `lopa demo`: the embedded default, end to end with nothing downloaded. Pretrains (or reuses) the
// tiny FM on the synthetic language, writes the synth-facts task data, runs a sweep of PT / IDPG /
// LoPA / LoRA x seeds through the local executor with multi-rank (mpirun) cells, then prints the
// results table and draws the plot.
#include <chrono>
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
#include "results/plot.h"
#include "results/report.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"

namespace lopa::app {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The demo's FM: small enough to pretrain in a few minutes on 2 cores, large enough to learn the facts.
PretrainConfig demo_fm_defaults() { return PretrainConfig{}; }

}  // namespace

int cmd_demo(const Args& args) {
  const DemoSweepOptions d;  // the option defaults
  po::options_description desc("demo");
  desc.add_options()
      ("out", po::value<std::string>()->default_value("lopa-demo"), "output directory: data, sweep runs, table, plot")
      ("fm", po::value<std::string>()->default_value(""),
       "use this FM checkpoint directory instead of the pretrained default (default: pretrain or reuse it, cached)")
      ("methods", po::value<std::string>()->default_value(d.methods), "methods of the sweep")
      ("seeds", po::value<std::string>()->default_value(d.seeds), "seeds of the sweep")
      ("steps", po::value<int64_t>()->default_value(d.steps), "training steps of each cell")
      ("eval-every", po::value<int64_t>()->default_value(d.eval_every), "evaluate every N steps (0: steps / 4)")
      ("lr", po::value<std::string>()->default_value(d.lr), "learning rate of the prompt methods (PT, IDPG, LoPA)")
      ("lora-lr", po::value<std::string>()->default_value(d.lora_lr),
       "learning rate of LoRA (on this task it reaches ~50% at 0.03 and ~90% at 0.01)")
      ("batch-size", po::value<int64_t>()->default_value(d.batch_size), "batch size of every cell")
      ("num-virtual-tokens", po::value<int64_t>()->default_value(d.num_virtual_tokens), "m of PT, IDPG and LoPA")
      ("rank", po::value<int64_t>()->default_value(d.rank), "r of LoPA and LoRA")
      ("ranks", po::value<int>()->default_value(d.ranks), "MPI ranks of each cell (mpirun -np)")
      ("tp", po::value<int>()->default_value(d.tp), "tensor-parallel ranks of each cell (the rest are data parallel)")
      ("jobs", po::value<int>()->default_value(0), "cells at once (0: cores / ranks)");
  add_pretrain_options(desc, demo_fm_defaults());
  auto parsed = parse_options("demo", "[--out DIR] [--steps N] [OPTIONS]", desc, args);
  if (parsed.help) return 0;
  const auto& vm = parsed.vm;
  const auto t0 = Clock::now();
  const auto elapsed = [&] {
    std::ostringstream o;
    o << std::fixed << std::setprecision(0) << std::chrono::duration<double>(Clock::now() - t0).count() << " s";
    return o.str();
  };
  const std::string out = fs::absolute(vm["out"].as<std::string>()).lexically_normal().string();
  fs::create_directories(out);

  // 1. The foundation model.
  std::string fm = vm["fm"].as<std::string>();
  if (fm.empty()) {
    const auto c = pretrain_config_from(vm);
    fm = default_pretrain_dir(c);
    std::cout << "[demo 1/4] foundation model: " << fm << std::endl;
    const auto r = ensure_pretrained(c, fm, std::cout);
    if (r.reused)
      std::cout << "[demo 1/4] reusing the cached FM (pretrained in " << std::fixed << std::setprecision(0) << r.seconds
                << " s: loss " << std::setprecision(3) << r.first_loss << " -> " << r.final_loss << ", fact recall "
                << std::setprecision(1) << 100 * r.fact_recall << "%)" << std::defaultfloat << std::endl;
  } else {
    fm = fs::absolute(fm).string();
    std::cout << "[demo 1/4] foundation model: " << fm << " (given)" << std::endl;
  }

  // 2. The task, and what the FM does on it alone.
  const auto data = out + "/data/synth-facts";
  write_synth_facts_data(data);
  const auto example = load_synth_facts("dev").examples.at(0);
  const double unadapted = synth_facts_unadapted_accuracy(fm, "dev");
  std::cout << "[demo 2/4] task synth-facts (" << elapsed() << "): " << load_synth_facts("train").examples.size()
            << " train / " << load_synth_facts("dev").examples.size() << " dev instances over disjoint people, e.g. \""
            << synth_facts_prompt(example) << "\" -> \"" << example.label << "\"; 12 candidates: chance 8.3%, "
            << "knowing only the relation 25%, the FM alone " << std::fixed << std::setprecision(1) << 100 * unadapted
            << "%" << std::defaultfloat << "; data in " << data << std::endl;

  // 3. The sweep: one spec per learning rate (LoRA's differs), each under its own root in runs/.
  DemoSweepOptions so;
  so.out = out;
  so.fm = fm;
  so.methods = vm["methods"].as<std::string>();
  so.seeds = vm["seeds"].as<std::string>();
  so.steps = vm["steps"].as<int64_t>();
  so.eval_every = vm["eval-every"].as<int64_t>();
  so.lr = vm["lr"].as<std::string>();
  so.lora_lr = vm["lora-lr"].as<std::string>();
  so.batch_size = vm["batch-size"].as<int64_t>();
  so.num_virtual_tokens = vm["num-virtual-tokens"].as<int64_t>();
  so.rank = vm["rank"].as<int64_t>();
  so.ranks = vm["ranks"].as<int>();
  so.tp = vm["tp"].as<int>();
  std::vector<cluster::Plan> plans;
  size_t cells = 0;
  for (const auto& spec : write_demo_specs(so)) {
    plans.push_back(cluster::make_plan(cluster::read_sweep_spec(spec)));
    cells += plans.back().cells.size();
  }
  std::cout << "[demo 3/4] sweep (" << elapsed() << "): " << cells << " cells x " << so.steps << " steps, each `mpirun -np "
            << vm["ranks"].as<int>() << "` with tp " << vm["tp"].as<int>() << "; specs " << out << "/sweep-*.ini"
            << std::endl;
  cluster::LocalRunOptions lo;
  lo.jobs = vm["jobs"].as<int>();
  lo.run_report = false;
  int rc = 0;
  for (const auto& plan : plans) {
    const int r = cluster::run_local(plan, lo, std::cout);
    LOPA_CHECK(r != 130, "lopa demo: interrupted (run it again to resume: completed cells are kept)");
    if (r != 0) rc = r;
  }

  // 4. The table and the plot.
  std::cout << "[demo 4/4] report (" << elapsed() << ")" << std::endl;
  results::ReportOptions ro;
  ro.with_train = true;
  const auto rep = results::build_report(out + "/runs", ro);
  std::ostringstream alone;
  alone << "\nThe FM alone, with no method: " << std::fixed << std::setprecision(1) << 100 * unadapted
        << "% dev accuracy.\n";
  const auto table = results::format_report(rep, "md") + alone.str();
  std::cout << "\n" << table << std::endl;
  write_file_atomic(out + "/results.md", table);
  const auto plot = out + "/demo.svg";
  results::render_plots(rep, plot);
  std::cout << "lopa demo: done in " << elapsed() << ". Table: " << out << "/results.md, plot: " << plot
            << ", run logs: " << out << "/runs/{prompts,lora}/<cell>/metrics.h5, sweep logs: " << out
            << "/runs/{prompts,lora}/sweep/logs" << std::endl;
  LOPA_CHECK(rc == 0, "lopa demo: some cells failed (see the summary above and their logs)");
  return 0;
}

}  // namespace lopa::app
