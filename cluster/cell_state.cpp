#include "cluster/cell_state.h"

#include <nlohmann/json.hpp>
#include <signal.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "cluster/cell_command.h"
#include "cluster/sweep_plan.h"
#include "cluster/train_keys.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"

namespace lopa::cluster {

CellState read_cell_state(const std::string& path) {
  CellState s;
  std::ifstream in(path);
  if (!in) return s;
  nlohmann::json j = parse_json_or_discarded(std::string(std::istreambuf_iterator<char>(in), {}));
  if (!j.is_object()) return s;
  const auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  const auto num = [&](const char* k, long dflt) { return j.contains(k) && j[k].is_number_integer() ? j[k].get<long>() : dflt; };
  s.status = str("status");
  s.attempt = int(num("attempt", 0));
  s.exit_code = int(num("exit_code", -1));
  s.pid = num("pid", 0);
  s.host = str("host");
  s.executor = str("executor");
  s.job_id = str("job_id");
  s.started_at = str("started_at");
  s.finished_at = str("finished_at");
  s.log = str("log");
  s.reason = str("reason");
  return s;
}

void write_cell_state(const std::string& path, const CellState& s) {
  nlohmann::ordered_json j;
  j["status"] = s.status;
  j["attempt"] = s.attempt;
  j["exit_code"] = s.exit_code;
  j["pid"] = s.pid;
  j["host"] = s.host;
  j["executor"] = s.executor;
  j["job_id"] = s.job_id;
  j["started_at"] = s.started_at;
  j["finished_at"] = s.finished_at;
  j["log"] = s.log;
  j["reason"] = s.reason;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  write_file_atomic(path, j.dump() + "\n", /*durable=*/false, ".tmp." + std::to_string(getpid()));
}

std::string judge_attempt(int exit_code, const RunLogStatus& log, bool require_log, std::string& reason) {
  reason.clear();
  if (exit_code == kExitCheckpointed) {
    reason = "stopped at a checkpoint (exit 75) before finishing";
    return "failed";
  }
  if (exit_code != 0) {
    reason = exit_code > 128 ? str("killed by signal ", exit_code - 128) : str("exit code ", exit_code);
    // The run log's own account, when the run recorded why it ended.
    if (log.readable && !log.log_error.empty()) reason += ": " + log.log_error;
    return "failed";
  }
  if (!log.exists && require_log) {
    reason = "exit code 0 but no run log (metrics.h5)";
    return "failed";
  }
  if (log.exists && !log.readable) {
    reason = "exit code 0 but " + log.error;
    return "failed";
  }
  if (log.exists && log.status != "completed") {
    reason = "exit code 0 but the run log says '" + log.status + "'";
    return "failed";
  }
  return "completed";
}

CellState record_attempt(const Plan& plan, const AttemptEvent& e) {
  const auto P = paths_of(plan.spec);
  bool known = false;
  for (const auto& c : plan.cells) known = known || c.id == e.cell;
  LOPA_CHECK(known, "lopa sweep record: no cell '", e.cell, "' in ", plan.spec.path);
  auto st = read_cell_state(P.state(e.cell));
  st.attempt = e.attempt;
  st.executor = e.executor;
  st.job_id = e.job_id;
  st.log = e.log;
  st.host = hostname();
  if (e.status == "running") {
    st.status = "running";
    st.started_at = utc_now();
    st.finished_at.clear();
    st.exit_code = -1;
    st.reason.clear();
  } else if (e.status == "requeued") {
    st.status = "requeued";
    st.exit_code = e.exit_code;
    st.finished_at = utc_now();
    st.reason = "requeued after SLURM's pre-timeout signal";
  } else if (e.status == "finished") {
    st.exit_code = e.exit_code;
    st.status = judge_attempt(st.exit_code, read_run_log_status(P.run_dir(e.cell)), plan.spec.launch.require_run_log,
                              st.reason);
    st.finished_at = utc_now();
  } else {
    fail("lopa sweep record: --status '", e.status, "': expected running, requeued or finished");
  }
  write_cell_state(P.state(e.cell), st);
  return st;
}

namespace {

bool pid_alive(long pid) { return pid > 0 && (kill(pid_t(pid), 0) == 0 || errno == EPERM); }

bool slurm_active(const std::string& state) {
  for (const char* s : {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED",
                        "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"})
    if (state.rfind(s, 0) == 0) return true;
  return false;
}

}  // namespace

CellStatus cell_status(const std::string& run_dir, const std::string& state_path, const SlurmView* slurm,
                       const std::string& job_id, bool require_log) {
  CellStatus out;
  out.state = read_cell_state(state_path);
  out.log = read_run_log_status(run_dir);
  const auto& st = out.state;
  const bool log_completed = out.log.readable && out.log.status == "completed";

  // The scheduler's word on this cell's task, when there is one.
  const std::string task = !st.job_id.empty() ? st.job_id : job_id;
  std::string sched;
  if (slurm && slurm->known && !task.empty()) {
    auto it = slurm->task_state.find(task);
    if (it != slurm->task_state.end()) sched = it->second;
  }
  const bool sched_active = slurm_active(sched);
  // Without an answer from SLURM, a recorded SLURM task is assumed alive.
  const bool sched_unknown = !slurm || !slurm->known;

  if (st.status == "running" || st.status == "requeued") {
    bool alive;
    if (st.executor == "slurm") alive = sched_active || sched_unknown;
    else alive = st.host == hostname() && pid_alive(st.pid);
    if (alive) {
      if (st.status == "requeued" || sched.rfind("PENDING", 0) == 0) {
        out.status = "pending";
        out.detail = st.status == "requeued" ? "requeued after a checkpoint (task " + task + ")" : "queued as " + task;
      } else {
        out.status = "running";
        out.detail = str("attempt ", st.attempt, st.executor == "slurm" ? " as SLURM task " + task : str(" pid ", st.pid, " on ", st.host));
      }
      return out;
    }
    if (log_completed) {
      out.status = "completed";
      out.detail = "run log says completed (the executor stopped before recording it)";
      return out;
    }
    out.status = "failed";
    out.detail = st.executor == "slurm" ? "SLURM task " + task + " ended" + (sched.empty() ? "" : " as " + sched) + " without a result"
                                        : str("interrupted: attempt ", st.attempt, " (pid ", st.pid, ") is gone");
    if (out.log.readable && out.log.status != "running")
      out.detail += "; run log says '" + out.log.status + "'" + (out.log.log_error.empty() ? "" : ": " + out.log.log_error);
    return out;
  }
  if (st.status == "completed" || st.status == "failed") {
    std::string reason;
    out.status = st.status == "completed" ? judge_attempt(0, out.log, require_log, reason) : "failed";
    if (st.status == "failed") reason = st.reason.empty() ? str("exit code ", st.exit_code) : st.reason;
    out.detail = out.status == "completed" ? str("attempt ", st.attempt, ", finished ", st.finished_at) : reason;
    // A newer submission may be queued for a failed cell.
    if (out.status == "failed" && !job_id.empty() && job_id != st.job_id && slurm && slurm->known) {
      auto it = slurm->task_state.find(job_id);
      if (it != slurm->task_state.end() && slurm_active(it->second)) {
        out.status = it->second.rfind("PENDING", 0) == 0 ? "pending" : "running";
        out.detail = "resubmitted as " + job_id;
      }
    }
    return out;
  }
  // No executor record: the run log (a run started by hand), else the queue, else pending.
  if (out.log.readable) {
    const auto& ls = out.log.status;
    out.status = ls == "completed" || ls == "failed" || ls == "interrupted" ? ls : "running";
    out.detail = "run log says '" + ls + "'" + (out.log.log_error.empty() ? "" : ": " + out.log.log_error) +
                 " (no executor record)";
    return out;
  }
  if (out.log.exists) {
    out.status = "failed";
    out.detail = out.log.error;
    return out;
  }
  out.status = "pending";
  if (!sched.empty()) out.detail = (sched_active ? "queued as " : "SLURM says " + sched + " for ") + task;
  if (!sched.empty() && !sched_active) {
    out.status = "failed";
    out.detail = "SLURM task " + task + " ended as " + sched + " without running the cell";
  }
  return out;
}

SlurmView query_slurm(const std::vector<std::string>& array_jobs) {
  SlurmView v;
  if (array_jobs.empty()) return v;
  std::string ids;
  for (const auto& j : array_jobs) ids += (ids.empty() ? "" : ",") + j;
  std::string out;
  if (have_program("sacct") &&
      run_capture("sacct -n -P -X -o JobID,State -j " + shell_quote(ids) + " 2>/dev/null", out) == 0) {
    v.known = true;
    v.from_sacct = true;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      const auto bar = line.find('|');
      if (bar == std::string::npos) continue;
      auto state = trim(line.substr(bar + 1));
      state = state.substr(0, state.find(' '));  // "CANCELLED by 0"
      v.task_state[trim(line.substr(0, bar))] = state;
    }
    if (!v.task_state.empty()) return v;
  }
  // squeue refuses ids of jobs it has forgotten; list this user's queue instead (tasks not in it ended).
  if (have_program("squeue") && run_capture("squeue -h -r --me -o '%i %T' 2>/dev/null", out) == 0) {
    v.known = true;
    v.from_sacct = false;
    v.task_state.clear();
    std::istringstream in(out);
    std::string id, state;
    while (in >> id >> state) v.task_state[id] = state;
  }
  return v;
}

}  // namespace lopa::cluster
