// `lopa sweep submit --dry-run`: the job-array script, its manifest and the aggregation job, read
// back from the files the real program writes; completed cells are left out of the array.
#include <gtest/gtest.h>

#include <filesystem>

#include "cluster/sweep_plan.h"
#include "cluster/sweep_spec.h"
#include "tests/cluster/test_util.h"

namespace lopa::cluster {
namespace {

using namespace test;

std::vector<std::vector<std::string>> read_tsv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    size_t start = 0, tab;
    while ((tab = line.find('\t', start)) != std::string::npos) {
      cols.push_back(line.substr(start, tab - start));
      start = tab + 1;
    }
    cols.push_back(line.substr(start));
    rows.push_back(cols);
  }
  return rows;
}

TEST(SweepSubmit, DryRunWritesArrayScriptManifestAndReportJob) {
  const auto dir = make_temp_dir("submit");
  const auto root = dir + "/runs";
  const auto spec = dir + "/spec.ini";
  write_text(spec, "name = arr\nroot = " + root + R"(
[grid]
model = ../shared/models/stories260K
task = sst2
method = lopa, pt, idpg
seed = 0, 1
[fixed]
num-virtual-tokens = 4
rank = 2
max-steps = 3
[launch]
executor = slurm
ranks-per-cell = 2
max-parallel = 2
nodes = 1
gpus-per-node = 1
cpus-per-task = 3
time = 00:10:00
partition = debug
account = lab
signal-seconds = 120
max-retries = 2
lopa = /opt/lopa/bin/lopa
)");
  std::string out;
  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep submit --dry-run --spec " + spec, &out), 0) << out;
  const auto plan = make_plan(read_sweep_spec(spec));
  ASSERT_EQ(plan.cells.size(), 6u);

  const auto script = read_text(root + "/sweep/array.sbatch");
  for (const std::string& line : std::vector<std::string>{"#SBATCH --array=0-5%2\n", "#SBATCH --output=" + root + "/sweep/logs/slurm-%A_%a.out\n", "#SBATCH --nodes=1\n",
        "#SBATCH --ntasks=2\n", "#SBATCH --cpus-per-task=3\n", "#SBATCH --gpus-per-node=1\n", "#SBATCH --time=00:10:00\n",
        "#SBATCH --partition=debug\n", "#SBATCH --account=lab\n", "#SBATCH --signal=B:USR1@120\n", "#SBATCH --requeue\n",
        "#SBATCH --job-name=lopa-arr\n", "max_attempts=3\n", "checkpoint_exit=75\n", "trap on_usr1 USR1\n",
        "scontrol requeue \"$task\"\n", "lopa=/opt/lopa/bin/lopa\n"})
    EXPECT_NE(script.find(line), std::string::npos) << "missing: " << line << "\n" << script;
  EXPECT_EQ(run("bash -n " + root + "/sweep/array.sbatch"), 0);

  // One manifest line per cell: index, id, run dir, command (srun with the rank count, then eval).
  const auto rows = read_tsv(root + "/sweep/cells.tsv");
  ASSERT_EQ(rows.size(), 6u);
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 4u);
    const auto& id = plan.cells[i].id;
    EXPECT_EQ(rows[i][0], std::to_string(i));
    EXPECT_EQ(rows[i][1], id);
    EXPECT_EQ(rows[i][2], root + "/" + id);
    EXPECT_EQ(rows[i][3], "srun --mpi=pmix -n 2 /opt/lopa/bin/lopa train --config " + root + "/sweep/configs/" + id +
                              ".ini --out " + root + "/" + id + " && srun --mpi=pmix -n 2 /opt/lopa/bin/lopa eval --run " +
                              root + "/" + id);
    EXPECT_TRUE(std::filesystem::exists(root + "/sweep/configs/" + id + ".ini"));
  }
  const auto report = read_text(root + "/sweep/report.sbatch");
  EXPECT_NE(report.find("/opt/lopa/bin/lopa report --root " + root + " > \"$out.tmp\""), std::string::npos) << report;
  EXPECT_EQ(run("bash -n " + root + "/sweep/report.sbatch"), 0);
  EXPECT_NE(out.find("--dependency=afterany:"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(root + "/sweep/jobs.json"));  // nothing was submitted

  // A cell whose run log says completed (written by h5py) is not submitted again.
  const auto done = plan.cells[2].id;
  ASSERT_EQ(run("/usr/bin/python3 -c \"import h5py,os; os.makedirs('" + root + "/" + done + "', exist_ok=True); "
                "h5py.File('" + root + "/" + done + "/metrics.h5','w').attrs['status']='completed'\""),
            0);
  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep submit --dry-run --spec " + spec, &out), 0) << out;
  EXPECT_NE(read_text(root + "/sweep/array.sbatch").find("#SBATCH --array=0-4%2\n"), std::string::npos);
  const auto rows2 = read_tsv(root + "/sweep/cells.tsv");
  ASSERT_EQ(rows2.size(), 5u);
  for (const auto& r : rows2) EXPECT_NE(r[1], done);
  std::filesystem::remove_all(dir);
}

TEST(SweepSubmit, MpirunLauncherInsideTheAllocation) {
  const auto dir = make_temp_dir("submit");
  const auto spec = dir + "/spec.ini";
  write_text(spec, "name = m\nroot = " + dir + R"(/runs
[grid]
model = m
task = rte
method = pt
[launch]
ranks-per-cell = 4
launcher = mpirun
report-command =
cell-command = {launch} {lopa} train --config {config} --out {run_dir}
lopa = /x/lopa
)");
  std::string out;
  ASSERT_EQ(run(std::string(LOPA_BIN) + " sweep submit --dry-run --spec " + spec, &out), 0) << out;
  const auto manifest = read_text(dir + "/runs/sweep/cells.tsv");
  const std::string root_flag = geteuid() == 0 ? " --allow-run-as-root" : "";
  EXPECT_NE(manifest.find("\tmpirun -np 4" + root_flag + " /x/lopa train --config "), std::string::npos) << manifest;
  EXPECT_FALSE(std::filesystem::exists(dir + "/runs/sweep/report.sbatch"));  // report-command is empty
  EXPECT_NE(read_text(dir + "/runs/sweep/array.sbatch").find("#SBATCH --signal=B:USR1@300\n"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lopa::cluster
