// `lopa sweep plan|run|submit|status --spec FILE`: expands a sweep spec into cells, runs them
// locally or as a SLURM job array, and shows per-cell status (DESIGN.md §6). Logic lives in cluster/.
#include <iostream>

#include "apps/commands.h"
#include "apps/options.h"
#include "cluster/cell_state.h"
#include "cluster/local_executor.h"
#include "cluster/slurm_submit.h"
#include "cluster/sweep_plan.h"
#include "cluster/sweep_status.h"
#include "runtime/base/error.h"

namespace lopa::app {

namespace {

namespace cl = lopa::cluster;

const char* kSweepUsage =
    "plan|run|submit|status --spec FILE [OPTIONS]\n\n"
    "  plan    list the cells of the grid (--json for JSON)\n"
    "  run     run the cells: locally ([launch] executor = local), or submit them (executor = slurm)\n"
    "  submit  write a SLURM job-array script and submit it with sbatch (--dry-run: only write)\n"
    "  status  pending / running / completed / failed per cell (--json for JSON)\n\n"
    "The spec (INI): name, root, [grid] (values crossed), [grid.METHOD] (crossed for that method only),\n"
    "[fixed] (keys for every cell), [download] (hub ids of checkpoint directories), [launch];\n"
    "see DESIGN.md section 6. Each cell's run directory is ROOT/<cell-id>; the executors keep their\n"
    "configs, logs and records in ROOT/sweep/.";

// `warn`: print the plan's warnings (paths that do not exist here) on stderr; `plan` does.
cl::Plan load(const po::variables_map& vm, bool warn = false) {
  LOPA_CHECK(vm.count("spec"), "lopa sweep: --spec FILE is required");
  return cl::make_plan(cl::read_sweep_spec(vm["spec"].as<std::string>()), warn ? &std::cerr : nullptr);
}

int do_plan(const Args& args) {
  po::options_description d("sweep plan");
  d.add_options()("spec", po::value<std::string>(), "sweep spec (INI)")("json", po::bool_switch(), "print JSON");
  const auto p = parse_options("sweep plan", kSweepUsage, d, args, false);
  if (p.help) return 0;
  const auto plan = load(p.vm, true);
  if (p.vm["json"].as<bool>()) {
    std::cout << cl::plan_json(plan) << std::endl;
    return 0;
  }
  const auto P = cl::paths_of(plan.spec);
  std::cout << plan.spec.name << ": " << plan.cells.size() << " cells under " << plan.spec.root << "\n";
  // Cells per method, in the order the methods are planned (methods may cross different axes).
  std::vector<std::pair<std::string, int>> per_method;
  for (const auto& c : plan.cells) {
    const auto& m = c.keys.at("method");
    if (per_method.empty() || per_method.back().first != m) per_method.emplace_back(m, 0);
    ++per_method.back().second;
  }
  std::cout << "  cells per method:";
  for (size_t i = 0; i < per_method.size(); ++i)
    std::cout << (i ? ", " : " ") << per_method[i].first << " " << per_method[i].second;
  std::cout << "\n";
  for (const auto& c : plan.cells) {
    std::cout << "  " << c.index << "  " << c.id << " ";
    for (const auto& [k, v] : c.keys) std::cout << " " << k << "=" << v;
    std::cout << "\n";
  }
  std::cout << std::flush;
  return 0;
}

int do_submit(const cl::Plan& plan, bool dry_run) {
  const auto r = cl::submit_slurm(plan, dry_run);
  if (r.tasks == 0) {
    std::cout << plan.spec.name << ": nothing to submit (every cell is completed, queued or running)" << std::endl;
    return 0;
  }
  std::cout << plan.spec.name << ": " << r.tasks << " cell(s) in the array\n"
            << "  script:   " << r.array_script << "\n  manifest: " << r.manifest << "\n";
  if (!plan.spec.launch.report_command.empty()) std::cout << "  report:   " << r.report_script << "\n";
  for (const auto& c : r.sbatch_commands) std::cout << (dry_run ? "  would run: " : "  ran: ") << c << "\n";
  if (!dry_run) {
    std::cout << "  array job " << r.array_job;
    if (!r.report_job.empty()) std::cout << ", report job " << r.report_job << " (afterany)";
    std::cout << "\n";
  }
  std::cout << std::flush;
  return 0;
}

int do_run(const Args& args) {
  po::options_description d("sweep run");
  d.add_options()("spec", po::value<std::string>(), "sweep spec (INI)")(
      "jobs", po::value<int>()->default_value(0), "cells at once (0: [launch] jobs, else cores / ranks-per-cell)")(
      "force", po::bool_switch(), "allow jobs x ranks-per-cell to exceed the cores")(
      "no-report", po::bool_switch(), "skip [launch] report-command at the end");
  const auto p = parse_options("sweep run", kSweepUsage, d, args, false);
  if (p.help) return 0;
  const auto plan = load(p.vm);
  if (plan.spec.launch.executor == "slurm") return do_submit(plan, false);
  cl::LocalRunOptions o;
  o.jobs = p.vm["jobs"].as<int>();
  LOPA_CHECK(o.jobs >= 0, "lopa sweep run: --jobs must be >= 0");
  o.force = p.vm["force"].as<bool>();
  o.run_report = !p.vm["no-report"].as<bool>();
  return cl::run_local(plan, o, std::cout);
}

int do_submit_cmd(const Args& args) {
  po::options_description d("sweep submit");
  d.add_options()("spec", po::value<std::string>(), "sweep spec (INI)")(
      "dry-run", po::bool_switch(), "write the scripts and manifest but do not call sbatch");
  const auto p = parse_options("sweep submit", kSweepUsage, d, args, false);
  if (p.help) return 0;
  return do_submit(load(p.vm), p.vm["dry-run"].as<bool>());
}

int do_status(const Args& args) {
  po::options_description d("sweep status");
  d.add_options()("spec", po::value<std::string>(), "sweep spec (INI)")("json", po::bool_switch(), "print JSON")(
      "cell", po::value<std::string>(), "print only this cell's status word")(
      "no-slurm", po::bool_switch(), "do not ask sacct/squeue");
  const auto p = parse_options("sweep status", kSweepUsage, d, args, false);
  if (p.help) return 0;
  const auto plan = load(p.vm);
  const auto s = cl::sweep_status(plan, !p.vm["no-slurm"].as<bool>());
  if (p.vm.count("cell")) {
    const auto id = p.vm["cell"].as<std::string>();
    for (size_t i = 0; i < plan.cells.size(); ++i)
      if (plan.cells[i].id == id) {
        std::cout << s.cells[i].status << std::endl;
        return 0;
      }
    fail("lopa sweep status: no cell '", id, "' in ", plan.spec.path);
  }
  std::cout << (p.vm["json"].as<bool>() ? cl::status_json(plan, s) + "\n" : cl::status_table(plan, s)) << std::flush;
  return 0;
}

// Used by the SLURM array script: records an attempt of one cell (cluster::record_attempt).
// `finished` prints the verdict.
int do_record(const Args& args) {
  po::options_description d("sweep record");
  d.add_options()("spec", po::value<std::string>(), "sweep spec (the sweep's copy)")(
      "cell", po::value<std::string>(), "cell id")("status", po::value<std::string>(), "running | requeued | finished")(
      "attempt", po::value<int>()->default_value(1), "attempt number")(
      "exit-code", po::value<int>()->default_value(-1), "the attempt's exit code (finished, requeued)")(
      "executor", po::value<std::string>()->default_value("slurm"), "local | slurm")(
      "job-id", po::value<std::string>()->default_value(""), "SLURM array task <job>_<index>")(
      "log", po::value<std::string>()->default_value(""), "the attempt's log file");
  const auto p = parse_options("sweep record", kSweepUsage, d, args, false);
  if (p.help) return 0;
  const auto plan = load(p.vm);
  LOPA_CHECK(p.vm.count("cell") && p.vm.count("status"), "lopa sweep record: --cell and --status are required");
  cl::AttemptEvent e;
  e.cell = p.vm["cell"].as<std::string>();
  e.status = p.vm["status"].as<std::string>();
  e.attempt = p.vm["attempt"].as<int>();
  e.exit_code = p.vm["exit-code"].as<int>();
  e.executor = p.vm["executor"].as<std::string>();
  e.job_id = p.vm["job-id"].as<std::string>();
  e.log = p.vm["log"].as<std::string>();
  const auto st = cl::record_attempt(plan, e);
  if (e.status == "finished") std::cout << st.status << std::endl;
  return 0;
}

}  // namespace

int cmd_sweep(const Args& args) {
  const std::string sub = args.empty() ? "" : args[0];
  const Args rest = args.empty() ? Args{} : Args(args.begin() + 1, args.end());
  if (sub == "plan") return do_plan(rest);
  if (sub == "run") return do_run(rest);
  if (sub == "submit") return do_submit_cmd(rest);
  if (sub == "status") return do_status(rest);
  if (sub == "record") return do_record(rest);
  if (sub == "--help" || sub == "-h") {
    std::cout << "usage: lopa sweep " << kSweepUsage << std::endl;
    return 0;
  }
  fail("lopa sweep: expected plan, run, submit or status (got '", sub, "'; see lopa sweep --help)");
}

}  // namespace lopa::app
