// `lopa score` end to end (LOPA_BIN): one case per task family, option errors, malformed predictions.
#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

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

// `lopa score ARGS` started by fork/exec, so that its pid (and hence its sandbox uids) is known.
CliRun run_tracked(const std::vector<std::string>& args, pid_t* pid_out) {
  std::vector<std::string> all = {LOPA_BIN, "score"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int p[2];
  CliRun r{-1, ""};
  if (pipe(p) != 0) return r;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    close(p[0]);
    close(p[1]);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) r.out.append(buf, (size_t)n);
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  *pid_out = pid;
  return r;
}

// /proc entries (zombies included) whose uid is in [first, first + 256), or whose parent is `parent`.
std::vector<std::string> processes_of(unsigned long first, pid_t parent) {
  std::vector<std::string> out;
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/status");
    std::string line, name, state;
    unsigned long uid = 0;
    long ppid = -1;
    while (std::getline(in, line)) {
      if (line.rfind("Name:", 0) == 0) name = line.substr(6);
      if (line.rfind("State:", 0) == 0) state = line.substr(7, 1);
      if (line.rfind("PPid:", 0) == 0) ppid = std::stol(line.substr(5));
      if (line.rfind("Uid:", 0) == 0) uid = std::stoul(line.substr(4));
    }
    if ((uid >= first && uid < first + 256) || ppid == parent)
      out.push_back(std::string(e->d_name) + " " + name + " " + state + " uid " + std::to_string(uid));
  }
  closedir(d);
  return out;
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

TEST_F(ScoreCli, MbppDetailsCountsAndNothingLeftBehind) {
  // The first 40 MBPP test problems with their canonical solution, then one wrong answer, one that
  // sleeps past --timeout and one that leaves a daemon behind (and is right). One worker: every
  // program reuses one sandbox uid. This process is a subreaper that does not reap while lopa runs (a
  // slow PID 1, as on the machine of the original report): whatever lopa left to "init" would stay
  // here as a zombie of its sandbox uid.
  std::vector<json> rows;
  {
    std::ifstream in(kData + "/mbpp/mbpp_test_release_v1.jsonl");
    std::string line;
    while (std::getline(in, line) && rows.size() < 43) rows.push_back(json::parse(line));
  }
  ASSERT_EQ(rows.size(), 43u);
  std::string preds;
  std::vector<std::string> ids, expect;
  for (size_t i = 0; i < 43; ++i) {
    std::string completion = rows[i]["canonical_solution"];
    // The function body's indentation, as the canonical solution's first statement has it.
    const size_t code = completion.find_first_not_of(" \t\n");
    const size_t nl = completion.rfind('\n', code), bol = nl == std::string::npos ? 0 : nl + 1;
    const std::string in = completion.substr(bol, code - bol);
    std::string status = "passed";
    if (i == 40) completion = in + "return 'wrong'", status = "failed";
    if (i == 41) completion = in + "import time\n" + in + "time.sleep(60)", status = "timeout";
    if (i == 42)
      completion = in + "import os, time\n" + in + "if os.fork() == 0:\n" + in + in + "os.setsid()\n" + in + in +
                   "time.sleep(60)\n" + completion;
    preds += json({{"task_id", rows[i]["task_id"]}, {"completion", completion}}).dump() + "\n";
    ids.push_back(rows[i]["task_id"]);
    expect.push_back(status);
  }
  const std::string details = (dir / "details.jsonl").string();
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  pid_t pid = 0;
  CliRun r = run_tracked({"--task", "mbpp", "--data-dir", kData, "--predictions", write("mbpp.jsonl", preds),
                          "--workers", "1", "--timeout", "1", "--details", details},
                         &pid);
  const unsigned long first_uid = 1000000000ul + 256ul * ((unsigned long)pid % 4000000ul);
  const auto left = processes_of(first_uid, getpid());
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  for (const auto& p : left) {  // reap what did land here, by pid
    const pid_t q = std::stoi(p);
    kill(q, SIGKILL);
    waitpid(q, nullptr, 0);
  }
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(left.empty()) << left.size() << " processes of lopa's sandbox uids or orphans remain, e.g. "
                            << (left.empty() ? "" : left[0]);
  json m = metrics(r);
  EXPECT_EQ(m["n_predictions"].get<int>(), 43);
  EXPECT_EQ(m["passed_samples"].get<int>(), 41);
  EXPECT_EQ(m["failed"].get<int>(), 1);
  EXPECT_EQ(m["timeouts"].get<int>(), 1);
  EXPECT_EQ(m["errors"].get<int>(), 0);
  EXPECT_NEAR(m["pass_at_1"].get<double>(), 41.0 / 487.0, 1e-12);

  std::ifstream in(details);
  std::string line;
  size_t i = 0;
  for (; std::getline(in, line); ++i) {
    ASSERT_LT(i, ids.size()) << line;
    json d = json::parse(line);
    EXPECT_EQ(d["id"], ids[i]);
    EXPECT_EQ(d["status"], expect[i]) << line;
    EXPECT_EQ(d["passed"].get<bool>(), expect[i] == "passed");
    EXPECT_GE(d["cpu_seconds"].get<double>(), 0.0);
    EXPECT_GE(d["setup_seconds"].get<double>(), 0.0);
    if (expect[i] == "passed") {
      EXPECT_EQ(d["exit_code"], 0);
      EXPECT_GT(d["cpu_seconds"].get<double>(), 0.0);
      EXPECT_LT(d["wall_seconds"].get<double>(), 1.0);
      EXPECT_EQ(d["stderr"], "");
    } else if (expect[i] == "failed") {
      EXPECT_EQ(d["exit_code"], 1);
      const std::string err = d["stderr"];
      EXPECT_EQ(err.rfind("Traceback", 0), 0u) << err;  // the first lines of stderr
      EXPECT_NE(err.find("AssertionError"), std::string::npos) << err;
    } else {
      EXPECT_TRUE(d["exit_code"].is_null()) << line;
      EXPECT_GE(d["wall_seconds"].get<double>(), 1.0);
      EXPECT_LT(d["wall_seconds"].get<double>(), 3.0);
      EXPECT_LT(d["cpu_seconds"].get<double>(), 0.5);
    }
  }
  EXPECT_EQ(i, ids.size());
}

TEST_F(ScoreCli, DetailsAreForCodeTasks) {
  std::string p = write("sst2.jsonl", "{\"idx\": 0, \"prediction\": \"1\"}\n");
  CliRun r =
      run("--task sst2 --data-dir " + kData + " --predictions " + p + " --details " + (dir / "d.jsonl").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--details"), std::string::npos) << r.out;
}
