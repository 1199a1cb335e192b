// The code tasks through `lopa train` / `lopa eval`: MBPP and CruxEval-O train on the reference
// solutions (target-only causal-LM loss) and evaluate by greedy generation with the method applied,
// scored by sandboxed execution (pass@1). stories260K cannot write Python, so pass@1 is ~0 here; what
// is checked is the pipeline: metrics recorded, predictions.jsonl in `lopa score`'s format for the
// task, and `lopa score` on that file agreeing with the trainer's own pass@1.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/process.h"
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {
const std::string kModel = std::string(LOPA_SHARED_DIR) + "/models/stories260K";
const std::string kData = std::string(LOPA_SHARED_DIR) + "/data";

using lopa::test::capture;

// The last line of `out` that parses as a JSON object.
nlohmann::json last_json(const std::string& out) {
  nlohmann::json j;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{') j = nlohmann::json::parse(line, nullptr, false);
  return j;
}
}  // namespace

class CodeTask : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(CodeTask, TrainsAndEvaluatesByGeneration) {
  const auto [task, method] = GetParam();
  const auto run_dir = (fs::temp_directory_path() / ("lopa_code_" + task + "_" + method + "_" + std::to_string(getpid()))).string();
  fs::remove_all(run_dir);
  int rc = 0;
  auto log = capture(std::string(LOPA_BIN) + " train --model " + kModel + " --data-dir " + kData + " --task " + task +
                         " --method " + method + " --num-virtual-tokens 4 --rank 2 --batch-size 4 --max-length 192"
                         " --max-train-examples 16 --max-eval-examples 4 --max-new-tokens 24 --max-steps 6 --lr 0.03"
                         " --eval-batch-size 4 --device cpu --out " + run_dir + " 2>&1",
                     &rc);
  ASSERT_EQ(rc, 0) << log;
  EXPECT_NE(log.find("pass_at_1="), std::string::npos) << log;

  // predictions.jsonl: one line per evaluated example, with the task's id and text keys.
  const std::string id_key = task == "mbpp" ? "task_id" : "id", text_key = task == "mbpp" ? "completion" : "prediction";
  std::ifstream in(run_dir + "/predictions.jsonl");
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j.contains(id_key) && j.contains(text_key)) << line;
  }
  EXPECT_EQ(lines, 4);

  auto ev = last_json(capture(std::string(LOPA_BIN) + " eval --run " + run_dir + " 2>/dev/null", &rc));
  ASSERT_EQ(rc, 0);
  ASSERT_TRUE(ev.contains("pass_at_1")) << ev.dump();
  EXPECT_GE(ev["pass_at_1"].get<double>(), 0.0);
  EXPECT_LE(ev["pass_at_1"].get<double>(), 1.0);
  EXPECT_TRUE(ev.contains("loss")) << ev.dump();
  // The same file scored by `lopa score` (a second path) over the whole split: the 4 predictions pass
  // as often as the trainer counted, and every other example of the split is reported missing.
  auto sc = last_json(capture(std::string(LOPA_BIN) + " score --task " + task + " --data-dir " + kData +
                                  " --predictions " + run_dir + "/predictions.jsonl" +
                                  (task == "mbpp" ? " --postprocess" : "") + " 2>/dev/null",
                              &rc));
  ASSERT_EQ(rc, 0) << sc.dump();
  EXPECT_DOUBLE_EQ(sc["passed_samples"].get<double>(), ev["pass_at_1"].get<double>() * 4) << sc.dump();
  EXPECT_DOUBLE_EQ(sc["missing"].get<double>(), sc["n_examples"].get<double>() - 4) << sc.dump();
  fs::remove_all(run_dir);
}

INSTANTIATE_TEST_SUITE_P(Tasks, CodeTask,
                         ::testing::Values(std::make_pair(std::string("mbpp"), std::string("lopa")),
                                           std::make_pair(std::string("cruxeval-o"), std::string("lora"))));
