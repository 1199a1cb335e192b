#include "cluster/slurm_submit.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cluster/cell_command.h"
#include "cluster/cell_state.h"
#include "cluster/train_keys.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa::cluster {

namespace fs = std::filesystem;

std::string slurm_launch_prefix(const LaunchSpec& L) {
  const auto R = std::to_string(L.ranks_per_cell);
  if (L.launcher == "srun") return "srun" + (L.srun_args.empty() ? "" : " " + L.srun_args) + " -n " + R;
  std::string p = L.mpirun + " -np " + R;
  if (geteuid() == 0) p += " --allow-run-as-root";
  if (!L.mpirun_args.empty()) p += " " + L.mpirun_args;
  return p;
}

std::string array_script_text(const Plan& plan, int tasks, const std::string& workdir) {
  const auto& spec = plan.spec;
  const auto& L = spec.launch;
  const auto P = paths_of(spec);
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# lopa sweep '" << spec.name << "' (" << spec.path << "): one SLURM array task per cell.\n"
    << "# Written by `lopa sweep submit`; the task's cell is line SLURM_ARRAY_TASK_ID of " << P.manifest() << ".\n"
    << "#SBATCH --job-name=lopa-" << spec.name << "\n"
    << "#SBATCH --array=0-" << (tasks - 1) << (L.max_parallel > 0 ? "%" + std::to_string(L.max_parallel) : "") << "\n"
    << "#SBATCH --output=" << P.dir() << "/logs/slurm-%A_%a.out\n"
    << "#SBATCH --open-mode=append\n"
    << "#SBATCH --chdir=" << workdir << "\n"
    << "#SBATCH --nodes=" << L.nodes << "\n"
    << "#SBATCH --ntasks=" << L.ranks_per_cell << "\n"
    << "#SBATCH --cpus-per-task=" << L.cpus_per_task << "\n";
  if (L.gpus_per_node > 0) s << "#SBATCH --gpus-per-node=" << L.gpus_per_node << "\n";
  if (!L.mem.empty()) s << "#SBATCH --mem=" << L.mem << "\n";
  if (!L.time.empty()) s << "#SBATCH --time=" << L.time << "\n";
  if (!L.partition.empty()) s << "#SBATCH --partition=" << L.partition << "\n";
  if (!L.account.empty()) s << "#SBATCH --account=" << L.account << "\n";
  if (!L.qos.empty()) s << "#SBATCH --qos=" << L.qos << "\n";
  if (L.signal_seconds > 0) s << "#SBATCH --signal=B:USR1@" << L.signal_seconds << "\n";
  s << "#SBATCH --requeue\n";
  for (const auto& e : L.sbatch_extra) s << "#SBATCH " << e << "\n";
  s << "set -u\n"
    << "lopa=" << shell_quote(lopa_program(L.lopa)) << "\n"
    << "spec=" << shell_quote(P.spec_copy()) << "\n"
    << "manifest=" << shell_quote(P.manifest()) << "\n"
    << "max_attempts=" << (1 + L.max_retries) << "\n"
    << "checkpoint_exit=" << kExitCheckpointed << "\n"
    << "export OMP_NUM_THREADS=\"${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}\"\n"
    << R"SH(task="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
log_file="$(dirname "$manifest")/logs/slurm-${task}.out"
say() { echo "[lopa sweep $(date -u +%Y-%m-%dT%H:%M:%SZ)] $*"; }

# The manifest line: index, cell id, run dir, command (tab-separated).
line="$(awk -F'\t' -v i="$SLURM_ARRAY_TASK_ID" '$1 == i { print; exit }' "$manifest")"
if [ -z "$line" ]; then say "no line $SLURM_ARRAY_TASK_ID in $manifest"; exit 2; fi
IFS=$'\t' read -r index cell_id run_dir command <<< "$line"
say "task $task (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname): cell $cell_id"

status="$("$lopa" sweep status --spec "$spec" --cell "$cell_id" 2>&1)"
if [ "$status" = completed ]; then say "cell $cell_id is already completed; nothing to do"; exit 0; fi

record() { "$lopa" sweep record --spec "$spec" --cell "$cell_id" --executor slurm --job-id "$task" --log "$log_file" "$@"; }

# SLURM's pre-timeout signal reaches this shell (--signal=B:USR1@N). Forward it to the cell's launcher
# (srun / mpirun forward SIGUSR1 to every rank), let the trainer checkpoint and exit, then requeue.
# The launcher is the command's process when bash exec'd it (one simple command), else the children
# of that bash (a compound command such as train && eval). Never the launcher's own helper processes.
requeue=0
child=0
on_usr1() {
  requeue=1
  say "pre-timeout signal: asking cell $cell_id to checkpoint"
  if [ "$child" -eq 0 ]; then return; fi
  case "$(cat "/proc/$child/comm" 2>/dev/null)" in
    bash|sh|dash) pkill -USR1 -P "$child" 2>/dev/null ;;
    *) kill -USR1 "$child" 2>/dev/null ;;
  esac
}
trap on_usr1 USR1

attempt=0
while [ "$attempt" -lt "$max_attempts" ]; do
  attempt=$((attempt + 1))
  record --status running --attempt "$attempt" >/dev/null
  say "cell $cell_id attempt $attempt/$max_attempts: $command"
  bash -c "$command" &
  child=$!
  wait "$child"; code=$?
  # wait returns early when a trapped signal arrives; keep waiting until the command has exited.
  while [ "$code" -gt 128 ] && kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
  child=0
  if [ "$requeue" -eq 1 ]; then
    record --status requeued --attempt "$attempt" --exit-code "$code" >/dev/null
    say "cell $cell_id stopped with exit code $code after the signal (checkpoint: exit $checkpoint_exit); requeueing $task"
    scontrol requeue "$task"
    exit 0
  fi
  verdict="$(record --status finished --attempt "$attempt" --exit-code "$code")"
  say "cell $cell_id attempt $attempt: exit code $code: $verdict"
  if [ "$verdict" = completed ]; then exit 0; fi
done
say "cell $cell_id failed after $attempt attempt(s)"
exit 1
)SH";
  return s.str();
}

std::string report_script_text(const Plan& plan, const std::string& workdir) {
  const auto& spec = plan.spec;
  const auto& L = spec.launch;
  const auto P = paths_of(spec);
  const auto cmd = expand_command(L.report_command,
                                  {{"lopa", lopa_program(L.lopa)}, {"root", spec.root}, {"name", spec.name},
                                   {"spec", P.spec_copy()}},
                                  spec.path + ": [launch] report-command");
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# lopa sweep '" << spec.name << "': aggregation after the array (afterany), written by `lopa sweep submit`.\n"
    << "#SBATCH --job-name=lopa-" << spec.name << "-report\n"
    << "#SBATCH --output=" << P.dir() << "/logs/report-%j.out\n"
    << "#SBATCH --chdir=" << workdir << "\n"
    << "#SBATCH --ntasks=1\n";
  if (!L.time.empty()) s << "#SBATCH --time=" << L.time << "\n";
  if (!L.partition.empty()) s << "#SBATCH --partition=" << L.partition << "\n";
  if (!L.account.empty()) s << "#SBATCH --account=" << L.account << "\n";
  if (!L.qos.empty()) s << "#SBATCH --qos=" << L.qos << "\n";
  s << "set -u\n"
    << "out=" << shell_quote(P.report_output()) << "\n"
    << "echo \"[lopa sweep] $(date -u +%Y-%m-%dT%H:%M:%SZ) report: \"" << shell_quote(cmd) << "\n"
    << cmd << " > \"$out.tmp\"\n"
    << "code=$?\n"
    << "mv -f \"$out.tmp\" \"$out\"\n"
    << "cat \"$out\"\n"
    << "exit $code\n";
  return s.str();
}

namespace {

void write_file(const std::string& path, const std::string& text, bool executable) {
  write_file_atomic(path, text);
  if (executable) fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
}

// sbatch --parsable prints "<id>" or "<id>;<cluster>".
std::string sbatch(const std::string& args, std::vector<std::string>& log) {
  const std::string cmd = "sbatch --parsable " + args;
  log.push_back(cmd);
  std::string out;
  const int code = run_capture(cmd + " 2>&1", out);
  const auto id = trim(out.substr(0, out.find(';')));
  LOPA_CHECK(code == 0 && !id.empty() && id.find_first_not_of("0123456789") == std::string::npos, "sbatch failed (exit ",
             code, "): ", trim(out));
  return id;
}

}  // namespace

SubmitResult submit_slurm(const Plan& plan, bool dry_run) {
  const auto& spec = plan.spec;
  const auto& L = spec.launch;
  const auto P = paths_of(spec);
  LOPA_CHECK(dry_run || have_program("sbatch"), "sbatch not found: run on a SLURM login node, or use --dry-run to only write the scripts");
  write_plan_files(plan);

  SubmitResult res;
  res.manifest = P.manifest();
  res.array_script = P.array_script();
  res.report_script = P.report_script();

  const std::string workdir = fs::current_path().string();
  const std::string launch = slurm_launch_prefix(L);
  const std::string lopa = lopa_program(L.lopa);
  const auto jobs = read_submitted_jobs(P);
  const SlurmView view = dry_run ? SlurmView{} : query_slurm(jobs.array_jobs);

  std::ostringstream manifest;
  std::vector<std::string> cells;
  for (const auto& c : plan.cells) {
    auto it = jobs.cell_task.find(c.id);
    const auto s = cell_status(P.run_dir(c.id), P.state(c.id), dry_run ? nullptr : &view,
                               it == jobs.cell_task.end() ? "" : it->second, L.require_run_log);
    if (s.status == "completed" || (!dry_run && (s.status == "running" || s.status == "pending") && !s.detail.empty()))
      continue;  // done, or already in the queue
    const auto vars = std::map<std::string, std::string>{
        {"launch", launch}, {"lopa", lopa}, {"config", P.config(c.id)}, {"run_dir", P.run_dir(c.id)},
        {"cell_id", c.id}, {"index", std::to_string(c.index)}, {"ranks", std::to_string(L.ranks_per_cell)},
        {"root", spec.root}, {"name", spec.name}, {"spec", P.spec_copy()}};
    const auto cmd = expand_command(L.cell_command, vars, spec.path + ": [launch] cell-command");
    manifest << cells.size() << "\t" << c.id << "\t" << P.run_dir(c.id) << "\t" << cmd << "\n";
    cells.push_back(c.id);
  }
  res.tasks = int(cells.size());
  if (res.tasks == 0) return res;

  write_file(P.manifest(), manifest.str(), false);
  write_file(P.array_script(), array_script_text(plan, res.tasks, workdir), true);
  const bool report = !L.report_command.empty();
  if (report) write_file(P.report_script(), report_script_text(plan, workdir), true);
  if (dry_run) {
    res.sbatch_commands.push_back("sbatch --parsable " + shell_quote(P.array_script()));
    if (report) res.sbatch_commands.push_back("sbatch --parsable --dependency=afterany:<array job> " + shell_quote(P.report_script()));
    return res;
  }

  res.array_job = sbatch(shell_quote(P.array_script()), res.sbatch_commands);
  if (report) res.report_job = sbatch("--dependency=afterany:" + res.array_job + " " + shell_quote(P.report_script()), res.sbatch_commands);

  // Record the submission: status maps cells to their array tasks with it.
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  {
    std::ifstream in(P.jobs_json());
    if (in) j = parse_ordered_json_or_discarded(std::string(std::istreambuf_iterator<char>(in), {}));
    if (!j.is_object()) j = nlohmann::ordered_json::object();
  }
  nlohmann::ordered_json sub;
  sub["array_job"] = res.array_job;
  sub["report_job"] = res.report_job;
  sub["submitted_at"] = utc_now();
  sub["cells"] = cells;
  j["submissions"].push_back(sub);
  write_file(P.jobs_json(), j.dump(2) + "\n", false);
  return res;
}

SubmittedJobs read_submitted_jobs(const SweepPaths& paths) {
  SubmittedJobs out;
  std::ifstream in(paths.jobs_json());
  if (!in) return out;
  const auto j = parse_json_or_discarded(std::string(std::istreambuf_iterator<char>(in), {}));
  if (!j.is_object() || !j.contains("submissions") || !j["submissions"].is_array()) return out;
  for (const auto& sub : j["submissions"]) {
    if (!sub.contains("array_job") || !sub["array_job"].is_string()) continue;
    const auto job = sub["array_job"].get<std::string>();
    out.array_jobs.push_back(job);
    if (!sub.contains("cells") || !sub["cells"].is_array()) continue;
    for (size_t i = 0; i < sub["cells"].size(); ++i)
      if (sub["cells"][i].is_string()) out.cell_task[sub["cells"][i].get<std::string>()] = job + "_" + std::to_string(i);
  }
  return out;
}

}  // namespace lopa::cluster
