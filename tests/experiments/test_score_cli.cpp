// `lopa score` end to end (LOPA_BIN): one case per task family, option errors, malformed predictions.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

using nlohmann::json;
namespace fs = std::filesystem;

static const std::string kData = std::string(LOPA_SHARED_DIR) + "/data";

namespace {

struct CliRun {
  int status;
  std::string out;
};

CliRun run(const std::string& args) {
  std::string cmd = std::string(LOPA_BIN) + " score " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class ScoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("lopa-test-score-" + std::to_string(getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) {
    fs::path p = dir / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  json metrics(const CliRun& r) {
    // The metrics are the last line of output.
    std::string s = r.out;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return json::parse(s.substr(s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1));
  }
  fs::path dir;
};

}  // namespace

TEST_F(ScoreCli, GlueRteAccuracy) {
  // RTE dev: idx 0..276. Predict "entailment" for all -> accuracy = 146 / 277 (label counts from Python).
  std::string preds;
  for (int i = 0; i < 277; ++i) preds += "{\"idx\": " + std::to_string(i) + ", \"prediction\": \"entailment\"}\n";
  CliRun r = run("--task rte --data-dir " + kData + " --predictions " + write("rte.jsonl", preds));
  ASSERT_EQ(r.status, 0) << r.out;
  json m = metrics(r);
  EXPECT_NEAR(m["accuracy"].get<double>(), 146.0 / 277.0, 1e-12);
  EXPECT_EQ(m.count("f1"), 0u);
}

TEST_F(ScoreCli, GlueMrpcF1) {
  // MRPC dev, all "1": accuracy 279/408, F1 = 2*279 / (2*279 + 129).
  std::string preds;
  for (int i = 0; i < 408; ++i) preds += "{\"idx\": \"" + std::to_string(i) + "\", \"prediction\": \"1\"}\n";
  CliRun r = run("--task mrpc --split dev --data-dir " + kData + " --predictions " + write("mrpc.jsonl", preds));
  ASSERT_EQ(r.status, 0) << r.out;
  json m = metrics(r);
  EXPECT_NEAR(m["accuracy"].get<double>(), 279.0 / 408.0, 1e-12);
  EXPECT_NEAR(m["f1"].get<double>(), 0.8122270742358079, 1e-12);
}

TEST_F(ScoreCli, GlueQqpOnAWrittenFile) {
  write("data/glue/QQP/dev.tsv",
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "10\t1\t2\ta?\tb?\t0\n11\t3\t4\tc?\td?\t1\n12\t5\t6\te?\tf?\t1\n13\t7\t8\tg?\th?\t0\n");
  // pred: 1 1 0 0 ; gold: 0 1 1 0 -> accuracy 0.5; tp 1 fp 1 fn 1 -> F1 0.5.
  std::string p = write("qqp.jsonl",
                        "{\"idx\": 10, \"prediction\": \"1\"}\n{\"idx\": 11, \"prediction\": \"1\"}\n"
                        "{\"idx\": 12, \"prediction\": \"0\"}\n{\"idx\": 13, \"prediction\": \"0\"}\n");
  CliRun r = run("--task qqp --data-dir " + (dir / "data").string() + " --predictions " + p);
  ASSERT_EQ(r.status, 0) << r.out;
  json m = metrics(r);
  EXPECT_DOUBLE_EQ(m["accuracy"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(m["f1"].get<double>(), 0.5);
}

TEST_F(ScoreCli, Mbpp) {
  // Two test problems: the canonical completion of MBPP/488 (area_pentagon) and a wrong one for MBPP/489.
  std::string preds =
      json({{"task_id", "MBPP/488"},
            {"completion", "  import math\n  \n  area=(math.sqrt(5*(5+2*math.sqrt(5)))*pow(a,2))/4.0\n  return area"}})
          .dump() +
      "\n" + json({{"task_id", "MBPP/489"}, {"completion", "    return 0"}}).dump() + "\n";
  CliRun r = run("--task mbpp --data-dir " + kData + " --predictions " + write("mbpp.jsonl", preds) + " --workers 2");
  ASSERT_EQ(r.status, 0) << r.out;
  json m = metrics(r);
  EXPECT_NEAR(m["pass_at_1"].get<double>(), 1.0 / 487.0, 1e-12);  // problems without a prediction count as failed
  EXPECT_EQ(m["missing"].get<int>(), 485);
  EXPECT_EQ(m["passed_samples"].get<int>(), 1);
}

TEST_F(ScoreCli, CruxEvalOutputAndInput) {
  // sample_0 (all split): f(nums) sorts (count, n) pairs. Output: the right literal; input: a raw answer.
  std::string o = json({{"id", "sample_0"}, {"prediction", "[(4, 1), (4, 1), (4, 1), (4, 1), (2, 3), (2, 3)]"}}).dump() +
                  "\n" + json({{"id", "sample_1"}, {"prediction", "{1: None}"}}).dump() + "\n";
  CliRun r = run("--task cruxeval-o --split all --data-dir " + kData + " --predictions " + write("o.jsonl", o));
  ASSERT_EQ(r.status, 0) << r.out;
  json m = metrics(r);
  EXPECT_NEAR(m["pass_at_1"].get<double>(), 1.0 / 800.0, 1e-12);
  std::string i = json({{"id", "sample_0"}, {"prediction", "assert f([3, 1, 1, 3, 1, 1]) == [(4, 1), (4, 1), (4, 1), (4, 1), (2, 3), (2, 3)]\n[/ANSWER]"}}).dump() + "\n";
  r = run("--task cruxeval-i --split all --data-dir " + kData + " --predictions " + write("i.jsonl", i));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NEAR(metrics(r)["pass_at_1"].get<double>(), 1.0 / 800.0, 1e-12);
}

TEST_F(ScoreCli, MalformedPredictionLineIsAnError) {
  std::string p = write("bad.jsonl", "{\"idx\": 0, \"prediction\": \"1\"}\n{\"idx\": 1, \"label\": \"1\"}\n");
  CliRun r = run("--task sst2 --data-dir " + kData + " --predictions " + p);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("bad.jsonl:2:"), std::string::npos) << r.out;
  p = write("bad2.jsonl", "{\"idx\": 0, \"prediction\": \"positive\"}\n");
  r = run("--task sst2 --data-dir " + kData + " --predictions " + p);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("not a label"), std::string::npos) << r.out;
  p = write("bad3.jsonl", "{\"task_id\": \"MBPP/1\", \"completion\": \"x\"}\n");  // a train id against test
  r = run("--task mbpp --data-dir " + kData + " --predictions " + p);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("MBPP/1"), std::string::npos) << r.out;
}

TEST_F(ScoreCli, OptionAndDataErrors) {
  CliRun r = run("--task cola --data-dir " + kData + " --predictions x");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("unknown task"), std::string::npos) << r.out;
  r = run("--task mnli --data-dir " + kData + " --predictions x");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("dev_matched.tsv"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MNLI.zip"), std::string::npos) << r.out;
  r = run("--task sst2 --data-dir " + kData);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("predictions"), std::string::npos) << r.out;
  EXPECT_EQ(run("--help").status, 0);
}
