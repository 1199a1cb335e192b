// `lopa pretrain` and `lopa demo` end to end through the binary: a shortened demo (few steps) writes
// the FM into a temporary cache, a completed run log per cell (read with h5py), a table row per
// method and the plot; a second run reuses the cached FM and the completed cells. A directory that
// is not a finished pretraining is never taken for one.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;

namespace {

std::string tmpdir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lopa_demo_test_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

// Runs a shell command; returns (exit status, stdout + stderr).
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  const int rc = p ? pclose(p) : -1;
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

const std::string kShortFm = " --hidden-size 64 --layers 1 --intermediate-size 128 --pretrain-steps 40";

}  // namespace

TEST(Pretrain, WritesACompleteCheckpointAtomicallyAndNeverTakesAPartialOne) {
  const auto d = tmpdir("pretrain");
  const auto out = d + "/fm";
  auto [rc, log] = run(std::string(LOPA_BIN) + " pretrain --out " + out + kShortFm);
  ASSERT_EQ(rc, 0) << log;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "pretrain.json"})
    EXPECT_TRUE(fs::is_regular_file(out + "/" + f)) << f;
  for (const auto& e : fs::directory_iterator(d)) EXPECT_EQ(e.path().filename(), "fm") << "left behind: " << e.path();
  EXPECT_NE(log.find("lopa pretrain: step 40/40"), std::string::npos) << log;
  // The record: the loss falls from about ln(vocab) during these few steps.
  auto [prc, rec] = run("/usr/bin/python3 -c \"import json,sys; r=json.load(open(sys.argv[1])); "
                        "print(r['first_loss'] > r['final_loss'] + 1.0, len(r['train']['loss']) > 2)\" " + out +
                        "/pretrain.json");
  EXPECT_EQ(rec, "True True\n") << read(out + "/pretrain.json");
  // Our own loaders read what it wrote.
  auto [irc, info] = run(std::string(LOPA_BIN) + " info --model " + out);
  EXPECT_EQ(irc, 0) << info;
  // Complete: a second call trains nothing.
  const auto mtime = fs::last_write_time(out + "/model.safetensors");
  auto [rc2, log2] = run(std::string(LOPA_BIN) + " pretrain --out " + out + kShortFm);
  EXPECT_EQ(rc2, 0) << log2;
  EXPECT_EQ(log2.find("pretrain: step"), std::string::npos) << log2;
  EXPECT_EQ(fs::last_write_time(out + "/model.safetensors"), mtime);
  // A directory without pretrain.json (a killed run written in place, or anything else) is refused.
  const auto partial = d + "/partial";
  fs::create_directories(partial);
  fs::copy_file(out + "/config.json", partial + "/config.json");
  auto [rc3, log3] = run(std::string(LOPA_BIN) + " pretrain --out " + partial + kShortFm);
  EXPECT_NE(rc3, 0);
  EXPECT_NE(log3.find("not a complete pretraining"), std::string::npos) << log3;
  fs::remove_all(d);
}

TEST(Demo, ShortDemoEndToEndThenReusesTheCachedFm) {
  const auto d = tmpdir("demo");
  // PT over two rates, the others over one; 2 seeds; 2-rank cells (tp 2) for the multi-rank path.
  const std::string cmd = "LOPA_CACHE_DIR=" + d + "/cache " + LOPA_BIN + " demo --out " + d + "/out --steps 4" +
                          " --eval-every 2 --seeds 0,1 --lr pt=0.3,0.001 --lr idpg=0.01 --lr lopa=0.01 --lr lora=0.01" +
                          " --ranks 2 --tp 2" + kShortFm;
  auto [rc, log] = run(cmd);
  ASSERT_EQ(rc, 0) << log;
  for (const char* stage : {"[demo 1/4 | ", "[demo 2/4 | ", "[demo 3/4 | ", "[demo 4/4 | ", "lopa pretrain: step 40/40",
                            "the FM alone", "The FM alone, with no method:", "pt: lr 0.3, 0.001 x seeds 0,1 (4 cells)",
                            "[sweep demo-lora] 2/2 done"})
    EXPECT_NE(log.find(stage), std::string::npos) << stage << "\n" << log;

  // The FM went to the cache, complete.
  int fms = 0;
  for (const auto& e : fs::directory_iterator(d + "/cache")) {
    ++fms;
    EXPECT_EQ(e.path().filename().string().rfind("demo-fm-", 0), 0u) << e.path();
    EXPECT_TRUE(fs::is_regular_file(e.path() / "pretrain.json"));
  }
  EXPECT_EQ(fms, 1);

  // "The FM alone" (the demo's own last-position argmax over the 12 candidates) agrees with the
  // trainer's candidate-scoring evaluation of an unchanged FM (fft at lr 0): two code paths.
  {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(the FM alone ([0-9.]+)%)"))) << log;
    const double alone = std::stod(m[1]) / 100;
    const auto fm = fs::directory_iterator(d + "/cache")->path().string();
    auto [zrc, zlog] = run(std::string(LOPA_BIN) + " train --model " + fm +
                           " --task synth-facts --method fft --lr 0 --max-steps 1 --eval-every 1 --out " + d + "/zero");
    ASSERT_EQ(zrc, 0) << zlog;
    ASSERT_TRUE(std::regex_search(zlog, m, std::regex(R"(eval accuracy=([0-9.e-]+))"))) << zlog;
    EXPECT_NEAR(std::stod(m[1]), alone, 6e-4) << zlog;
  }

  // Every cell a completed 2-rank run log evaluated on dev and test at steps 2 and 4. From the logs
  // (h5py, not lopa's reader), per method and lr: the best mean dev over seeds, and the test values there.
  auto [hrc, h5] = run("/usr/bin/python3 -c \"import h5py,glob,json,sys,collections\n"
                       "runs = collections.defaultdict(dict)\n"
                       "for p in sorted(glob.glob(sys.argv[1] + '/*/*/metrics.h5')):\n"
                       "  f = h5py.File(p, 'r'); a = f.attrs\n"
                       "  s = lambda k: a[k].decode() if isinstance(a[k], bytes) else str(a[k])\n"
                       "  lr = json.loads(s('config'))['lr']\n"
                       "  print('run', s('method'), lr, s('status'), int(a['world_size']), list(f['eval/dev/step'][:]), list(f['eval/test/step'][:]))\n"
                       "  runs[(s('method'), lr)][int(a['seed'])] = (list(f['eval/dev/accuracy'][:]), list(f['eval/test/accuracy'][:]))\n"
                       "best = collections.defaultdict(list)\n"
                       "for (m, lr), seeds in runs.items():\n"
                       "  means = [sum(v[0][i] for v in seeds.values()) / len(seeds) for i in range(2)]\n"
                       "  i = max(range(2), key=lambda i: (means[i], -i))\n"
                       "  best[m].append((means[i], lr, sum(v[1][i] for v in seeds.values()) / len(seeds)))\n"
                       "for m, c in sorted(best.items()):\n"
                       "  c.sort(key=lambda x: -x[0])\n"
                       "  print('best', m, c[0][1], '%.1f' % (100 * c[0][2]), 'tie' if len(c) > 1 and c[1][0] == c[0][0] else 'clear')\" " +
                       d + "/out/runs");
  ASSERT_EQ(hrc, 0) << h5;
  for (const char* m : {"pt 0.3", "pt 0.001", "idpg 0.01", "lopa 0.01", "lora 0.01"})
    EXPECT_EQ(count(h5, std::string("run ") + m + " completed 2 [2, 4] [2, 4]\n"), 2) << m << "\n" << h5;
  EXPECT_EQ(count(h5, "run "), 10) << h5;

  // The summary table: one row per method with its grid, the lr selected on dev and its test mean,
  // equal to what the logs say.
  const auto table = read(d + "/out/results.md");
  EXPECT_NE(table.find("at the configuration and evaluation step with the best mean dev"), std::string::npos) << table;
  std::smatch m;
  for (const char* method : {"pt", "idpg", "lopa", "lora"}) {
    ASSERT_TRUE(std::regex_search(h5, m, std::regex(std::string("best ") + method + " ([0-9.]+) ([0-9.]+) (tie|clear)\n")))
        << h5;
    const std::string lr = m[1], test = m[2];
    const bool tie = m[3] == "tie";
    const std::string label = std::string(method) == "pt"     ? "PT (m=4)"
                              : std::string(method) == "idpg" ? "IDPG (m=4)"
                              : std::string(method) == "lopa" ? "LoPA (m=4, r=2)"
                                                              : "LoRA (r=2)";
    std::smatch row;
    ASSERT_TRUE(std::regex_search(table, row, std::regex("\\| " + std::regex_replace(label, std::regex(R"([()])"), R"(\$&)") +
                                                          R"( \| ([0-9., ]+) \| ([0-9.]+) \(\d\) \| [0-9.]+ \| ([0-9.]+) ± [0-9.]+ \(n 2\) \|)")))
        << label << "\n" << table;
    if (std::string(method) == "pt") {
      EXPECT_EQ(row[1].str(), "0.3, 0.001");
    }
    if (!tie) {  // two rates with equal dev means: either choice is right
      EXPECT_EQ(row[2].str(), lr) << label << "\n" << table << "\n" << h5;
      EXPECT_EQ(row[3].str(), test) << label << "\n" << table << "\n" << h5;
    }
    EXPECT_NE(log.find(label), std::string::npos) << label;
  }
  EXPECT_NE(table.find("Paired comparisons per column"), std::string::npos) << table;
  EXPECT_NE(table.find("LoPA vs PT over 2 paired seeds"), std::string::npos) << table;
  // The figure: PT's two rates give the learning-rate panel; no panel against m (one m).
  const auto svg = read(d + "/out/demo.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("dev accuracy against the learning rate"), std::string::npos);
  EXPECT_EQ(svg.find("prompt length m"), std::string::npos);
  EXPECT_EQ(count(read(d + "/out/data/synth-facts/test.jsonl"), "\n"), 72);

  // Second run: the cached FM is reused (no pretraining step), the completed cells are not run again.
  const auto fm_mtime = fs::last_write_time(fs::directory_iterator(d + "/cache")->path() / "model.safetensors");
  auto [rc2, log2] = run(cmd);
  ASSERT_EQ(rc2, 0) << log2;
  EXPECT_EQ(log2.find("lopa pretrain: step"), std::string::npos) << log2;
  EXPECT_NE(log2.find("reusing the cached FM"), std::string::npos) << log2;
  EXPECT_NE(log2.find("4 already completed"), std::string::npos) << log2;  // PT: 2 rates x 2 seeds
  EXPECT_EQ(count(log2, "2 already completed"), 3) << log2;               // IDPG, LoPA, LoRA
  EXPECT_EQ(fs::last_write_time(fs::directory_iterator(d + "/cache")->path() / "model.safetensors"), fm_mtime);
  fs::remove_all(d);
}

// `lopa demo --methods pt,idpg` (issue 17: planning failed on "[fixed] rank is not used by any method").
TEST(Demo, PromptMethodsOnly) {
  const auto d = tmpdir("demo_pt_idpg");
  auto [rc, log] = run("LOPA_CACHE_DIR=" + d + "/cache " + LOPA_BIN + " demo --out " + d +
                       "/out --methods pt,idpg --steps 2 --eval-every 2 --seeds 0 --lr pt=0.1 --lr idpg=0.01" + kShortFm);
  ASSERT_EQ(rc, 0) << log;
  const auto table = read(d + "/out/results.md");
  EXPECT_NE(table.find("| PT (m=4)"), std::string::npos) << table;
  EXPECT_NE(table.find("| IDPG (m=4)"), std::string::npos) << table;
  EXPECT_EQ(table.find("LoPA ("), std::string::npos) << table;
  EXPECT_FALSE(fs::exists(d + "/out/sweep-lopa.ini"));
  fs::remove_all(d);
}
