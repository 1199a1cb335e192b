#include "cluster/sweep_status.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

#include "cluster/slurm_submit.h"

namespace lopa::cluster {

SweepStatus sweep_status(const Plan& plan, bool ask_slurm) {
  const auto P = paths_of(plan.spec);
  const auto jobs = read_submitted_jobs(P);
  SlurmView view;
  if (ask_slurm && !jobs.array_jobs.empty()) view = query_slurm(jobs.array_jobs);
  SweepStatus s;
  for (const auto& c : plan.cells) {
    auto it = jobs.cell_task.find(c.id);
    auto cs = cell_status(P.run_dir(c.id), P.state(c.id), jobs.array_jobs.empty() ? nullptr : &view,
                          it == jobs.cell_task.end() ? "" : it->second, plan.spec.launch.require_run_log);
    if (cs.status == "pending") ++s.pending;
    else if (cs.status == "running") ++s.running;
    else if (cs.status == "completed") ++s.completed;
    else if (cs.status == "interrupted") ++s.interrupted;
    else ++s.failed;
    s.cells.push_back(std::move(cs));
  }
  return s;
}

std::string status_table(const Plan& plan, const SweepStatus& s) {
  std::ostringstream os;
  size_t w = 4;
  for (const auto& c : plan.cells) w = std::max(w, c.id.size());
  os << "CELL" << std::string(w - 4 + 2, ' ') << "STATUS     DETAIL\n";
  for (size_t i = 0; i < plan.cells.size(); ++i) {
    const auto& c = plan.cells[i];
    const auto& cs = s.cells[i];
    os << c.id << std::string(w - c.id.size() + 2, ' ') << cs.status << std::string(11 - std::min<size_t>(10, cs.status.size()), ' ')
       << cs.detail << "\n";
  }
  os << plan.spec.name << ": " << plan.cells.size() << " cells: " << s.completed << " completed, " << s.running
     << " running, " << s.pending << " pending, " << s.failed << " failed"
     << (s.interrupted > 0 ? ", " + std::to_string(s.interrupted) + " interrupted" : std::string()) << "\n";
  return os.str();
}

std::string status_json(const Plan& plan, const SweepStatus& s) {
  const auto P = paths_of(plan.spec);
  nlohmann::ordered_json j;
  j["name"] = plan.spec.name;
  j["root"] = plan.spec.root;
  j["summary"] = {{"total", plan.cells.size()}, {"pending", s.pending}, {"running", s.running},
                  {"completed", s.completed}, {"failed", s.failed}, {"interrupted", s.interrupted}};
  j["cells"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < plan.cells.size(); ++i) {
    const auto& c = plan.cells[i];
    const auto& cs = s.cells[i];
    nlohmann::ordered_json cj;
    cj["index"] = c.index;
    cj["id"] = c.id;
    cj["status"] = cs.status;
    cj["detail"] = cs.detail;
    cj["attempt"] = cs.state.attempt;
    cj["exit_code"] = cs.state.exit_code;
    cj["job_id"] = cs.state.job_id;
    cj["run_dir"] = P.run_dir(c.id);
    cj["log"] = cs.state.log.empty() ? P.log(c.id) : cs.state.log;
    cj["run_log_status"] = cs.log.readable ? cs.log.status : "";
    j["cells"].push_back(cj);
  }
  return j.dump(2);
}

}  // namespace lopa::cluster
