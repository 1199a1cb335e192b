// `lopa report` as a user runs it: exit status, CSV on stdout, summary and exclusions on stderr,
// one-line errors for bad options.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "results/run_log.h"

namespace fs = std::filesystem;
using namespace lopa::results;

namespace {

int run(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  out->clear();
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out->append(buf, n);
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

TEST(ReportCli, CsvAndErrors) {
  const fs::path root = fs::temp_directory_path() / ("lopa-report-cli-" + std::to_string(::getpid()));
  fs::remove_all(root);
  for (int seed = 0; seed < 2; ++seed) {
    fs::create_directories(root / std::to_string(seed));
    RunInfo info;
    info.method = "pt";
    info.task = "rte";
    info.model = "m";
    info.seed = seed;
    info.config_json = R"({"num-virtual-tokens": 5, "seed": )" + std::to_string(seed) + "}";
    auto log = RunLog::create((root / std::to_string(seed) / "metrics.h5").string(), info);
    log.log_eval(1, {{"accuracy", seed ? 0.75 : 0.25}});
    log.set_status_completed();
  }
  std::string out;
  const std::string bin = LOPA_BIN;
  ASSERT_EQ(run(bin + " report --root '" + root.string() + "' --format csv 2>/dev/null", &out), 0) << out;
  EXPECT_EQ(out, "method,label,m,r,trainable_params,server_adapter,rte accuracy mean,rte accuracy std,rte accuracy n\n"
                 "pt,PT (m=5),5,,0,no,0.5,0.353553390593,2\n");
  ASSERT_EQ(run(bin + " report --root '" + root.string() + "' --format csv 2>&1 >/dev/null", &out), 0);
  EXPECT_NE(out.find("runs not in the table: 0"), std::string::npos) << out;
  EXPECT_EQ(run(bin + " report --root '" + root.string() + "' --format html 2>&1", &out), 1);
  EXPECT_NE(out.find("--format html"), std::string::npos) << out;
  EXPECT_NE(run(bin + " report 2>&1", &out), 0);  // --root is required
  EXPECT_NE(out.find("root"), std::string::npos) << out;
  fs::remove_all(root);
}
