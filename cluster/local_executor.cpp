#include "cluster/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>

#include "cluster/cell_command.h"
#include "cluster/cell_state.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"

namespace lopa::cluster {

namespace {

using Clock = std::chrono::steady_clock;

// Set by SIGINT/SIGTERM; the only way a signal handler may talk to the loop below.
volatile sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int sig) { g_stop_signal = sig; }

std::string fmt_duration(double s) {
  if (s < 0) return "?";
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

void append_line(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::app);
  out << text << std::flush;
}

struct Running {
  const Cell* cell;
  int attempt;
  Clock::time_point start;
};

}  // namespace

std::string local_launch_prefix(const LaunchSpec& launch, int cores) {
  std::string p = launch.mpirun + " -np " + std::to_string(launch.ranks_per_cell);
  if (launch.ranks_per_cell > cores) p += " --oversubscribe";  // Open MPI refuses more ranks than slots
  if (geteuid() == 0) p += " --allow-run-as-root";
  if (!launch.mpirun_args.empty()) p += " " + launch.mpirun_args;
  return p;
}

int run_local(const Plan& plan, const LocalRunOptions& options, std::ostream& out) {
  const auto& spec = plan.spec;
  const auto& L = spec.launch;
  const auto P = paths_of(spec);
  const int cores = available_cores();
  const int R = L.ranks_per_cell;
  int jobs = options.jobs > 0 ? options.jobs : L.jobs > 0 ? L.jobs : std::max(1, cores / R);
  jobs = std::max(1, std::min<int>(jobs, std::max<size_t>(1, plan.cells.size())));
  LOPA_CHECK(options.force || jobs * R <= cores, spec.path, ": ", jobs, " cell(s) at once x ranks-per-cell ", R, " = ",
             jobs * R, " processes exceed the ", cores, " cores here (lower --jobs, or --force to oversubscribe)");

  write_plan_files(plan);
  const std::string lopa = lopa_program(L.lopa);
  const std::string launch = local_launch_prefix(L, cores);
  // Threads per rank so that the cells at once share the cores instead of fighting over them.
  const int threads = std::max(1, cores / (jobs * R));
  const int max_attempts = 1 + L.max_retries;

  // What is left to do: everything not completed (and not being run by another executor).
  std::deque<const Cell*> queue;
  int done = 0, skipped = 0, elsewhere = 0;
  for (const auto& c : plan.cells) {
    const auto s = cell_status(P.run_dir(c.id), P.state(c.id), nullptr, "", L.require_run_log);
    if (s.status == "completed") {
      ++done;
      ++skipped;
    } else if (s.status == "running") {
      ++elsewhere;
      out << "[sweep " << spec.name << "] " << c.id << " is running elsewhere (" << s.detail << "); not started here\n";
    } else {
      queue.push_back(&c);
    }
  }
  const int total = int(plan.cells.size());
  out << "[sweep " << spec.name << "] " << total << " cells: " << skipped << " already completed, " << queue.size()
      << " to run, " << jobs << " at once x " << R << " rank(s), "
      << (std::getenv("OMP_NUM_THREADS") ? std::string("OMP_NUM_THREADS=") + std::getenv("OMP_NUM_THREADS")
                                         : std::to_string(threads))
      << " thread(s) per rank, up to "
      << max_attempts << " attempt(s) each; logs in " << P.dir() << "/logs" << std::endl;

  struct sigaction sa {}, old_int {}, old_term {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: waitpid must return on a signal
  g_stop_signal = 0;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  std::map<pid_t, Running> running;
  std::map<std::string, int> attempts;  // this pass
  std::map<std::string, std::string> final_status, final_reason;
  std::map<std::string, double> seconds;
  int failed = 0;
  double attempt_seconds = 0;
  int attempts_finished = 0;
  const auto t0 = Clock::now();

  const auto progress = [&]() {
    const int left = total - done - failed - elsewhere;
    std::string eta = "?";
    if (attempts_finished > 0) {
      const double mean = attempt_seconds / attempts_finished;
      eta = fmt_duration(mean * double(left) / double(jobs));
    }
    out << "[sweep " << spec.name << "] " << done << "/" << total << " done, " << failed << " failed, " << left
        << " left (" << running.size() << " running) | elapsed "
        << fmt_duration(std::chrono::duration<double>(Clock::now() - t0).count()) << ", ETA " << eta << std::endl;
  };

  const auto start_cell = [&](const Cell* c) {
    const int attempt = ++attempts[c->id];
    const auto vars = std::map<std::string, std::string>{
        {"launch", launch}, {"lopa", lopa}, {"config", P.config(c->id)}, {"run_dir", P.run_dir(c->id)},
        {"cell_id", c->id}, {"index", std::to_string(c->index)}, {"ranks", std::to_string(R)},
        {"root", spec.root}, {"name", spec.name}, {"spec", P.spec_copy()}};
    const std::string cmd = expand_command(L.cell_command, vars, spec.path + ": [launch] cell-command");
    const std::string log = P.log(c->id);
    append_line(log, str("=== lopa sweep ", spec.name, ": cell ", c->id, " attempt ", attempt, "/", max_attempts, " at ",
                         utc_now(), " on ", hostname(), "\n$ ", cmd, "\n"));
    const pid_t pid = fork();
    LOPA_CHECK(pid >= 0, "fork failed: ", std::strerror(errno));
    if (pid == 0) {
      setpgid(0, 0);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      const int fd = open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
      const int devnull = open("/dev/null", O_RDONLY);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      if (devnull >= 0) dup2(devnull, 0);
      if (!std::getenv("OMP_NUM_THREADS")) setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
      // Cells share the cores: spinning OpenMP barriers of one cell starve the others (a 2-thread
      // matmul measured 6x slower spinning than passive on 2 busy cores).
      if (!std::getenv("OMP_WAIT_POLICY")) setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
      setenv("LOPA_SWEEP_CELL", c->id.c_str(), 1);
      setenv("LOPA_SWEEP_ATTEMPT", std::to_string(attempt).c_str(), 1);
      execl("/bin/sh", "sh", "-c", cmd.c_str(), (char*)nullptr);
      _exit(127);
    }
    setpgid(pid, pid);  // also here: no race with the child's own setpgid
    CellState st;
    st.status = "running";
    st.attempt = attempt;
    st.pid = pid;
    st.host = hostname();
    st.executor = "local";
    st.started_at = utc_now();
    st.log = log;
    write_cell_state(P.state(c->id), st);
    running[pid] = Running{c, attempt, Clock::now()};
  };

  const auto finish_cell = [&](pid_t pid, int wstatus) {
    const auto r = running.at(pid);
    running.erase(pid);
    const Cell* c = r.cell;
    const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : -1;
    const double secs = std::chrono::duration<double>(Clock::now() - r.start).count();
    attempt_seconds += secs;
    ++attempts_finished;
    seconds[c->id] += secs;
    std::string reason;
    const std::string verdict = judge_attempt(code, read_run_log_status(P.run_dir(c->id)), L.require_run_log, reason);
    CellState st = read_cell_state(P.state(c->id));
    st.status = verdict;
    st.exit_code = code;
    st.finished_at = utc_now();
    st.reason = reason;
    write_cell_state(P.state(c->id), st);
    append_line(P.log(c->id), str("=== exit code ", code, " after ", fmt_duration(secs), ": ", verdict,
                                  reason.empty() ? "" : " (" + reason + ")", "\n"));
    if (verdict == "completed") {
      ++done;
      final_status[c->id] = "completed";
    } else if (r.attempt < max_attempts && !g_stop_signal) {
      out << "[sweep " << spec.name << "] " << c->id << " attempt " << r.attempt << " failed (" << reason
          << "); retrying" << std::endl;
      queue.push_back(c);
      return;
    } else {
      ++failed;
      final_status[c->id] = "failed";
      final_reason[c->id] = reason;
    }
    progress();
  };

  while ((!queue.empty() || !running.empty()) && !g_stop_signal) {
    while (!queue.empty() && int(running.size()) < jobs && !g_stop_signal) {
      start_cell(queue.front());
      queue.pop_front();
    }
    int wstatus = 0;
    const pid_t pid = waitpid(-1, &wstatus, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (running.count(pid)) finish_cell(pid, wstatus);
  }

  int rc = 0;
  if (g_stop_signal) {
    out << "[sweep " << spec.name << "] interrupted by signal " << int(g_stop_signal) << ": stopping " << running.size()
        << " running cell(s); completed cells stay completed, the next run resumes the rest" << std::endl;
    for (const auto& [pid, r] : running) kill(-pid, SIGTERM);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!running.empty()) {
      int wstatus = 0;
      const pid_t pid = waitpid(-1, &wstatus, WNOHANG);
      if (pid > 0 && running.count(pid)) {
        const auto r = running.at(pid);
        running.erase(pid);
        CellState st = read_cell_state(P.state(r.cell->id));
        st.status = "failed";
        st.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
        st.finished_at = utc_now();
        st.reason = "interrupted by the executor's signal";
        write_cell_state(P.state(r.cell->id), st);
        append_line(P.log(r.cell->id), "=== interrupted\n");
        continue;
      }
      if (pid < 0 && errno != EINTR) break;
      if (Clock::now() > deadline)
        for (const auto& [p, r] : running) kill(-p, SIGKILL);
      usleep(50 * 1000);
    }
    rc = 130;
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);

  // Summary: every cell run in this pass, failed ones with their log.
  out << "[sweep " << spec.name << "] summary: " << done << " completed (" << skipped << " skipped as already completed), "
      << failed << " failed, " << (total - done - failed) << " not finished\n";
  for (const auto& c : plan.cells) {
    auto it = final_status.find(c.id);
    if (it == final_status.end()) continue;
    out << "  " << it->second << (it->second == "failed" ? "   " : "") << "  " << c.id << "  attempts " << attempts[c.id]
        << ", " << fmt_duration(seconds[c.id]);
    if (it->second == "failed") out << "  (" << final_reason[c.id] << "; log " << P.log(c.id) << ")";
    out << "\n";
  }
  out << std::flush;
  if (rc) return rc;

  if (options.run_report && !L.report_command.empty() && done > 0) {
    const auto cmd = expand_command(L.report_command, {{"lopa", lopa}, {"root", spec.root}, {"name", spec.name},
                                                       {"spec", P.spec_copy()}},
                                    spec.path + ": [launch] report-command");
    out << "[sweep " << spec.name << "] report: " << cmd << std::endl;
    std::string text;
    const int code = run_capture(cmd + " 2>>" + shell_quote(P.dir() + "/logs/report.log"), text);
    write_file_atomic(P.report_output(), text);
    out << text << std::flush;
    if (code != 0) {
      out << "[sweep " << spec.name << "] the report command failed with exit code " << code << " (log "
          << P.dir() << "/logs/report.log)" << std::endl;
      return 1;
    }
  }
  return failed > 0 || done + elsewhere < total ? 1 : 0;
}

}  // namespace lopa::cluster
