// CruxEval: the recorded 400/400 split (checked against an independent Python implementation of the
// documented shuffle), prompts, and the official post-processing of predictions.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "experiments/tasks/cruxeval.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/templates.h"
#include "runtime/base/error.h"

using namespace lopa;

static const std::string kData = std::string(LOPA_SHARED_DIR) + "/data";

static std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(CruxEval, SplitIs400And400DisjointAndRecorded) {
  auto tr = load_task("cruxeval-o", kData, "train");
  auto te = load_task("cruxeval-o", kData, "test");
  ASSERT_EQ(tr.examples.size(), 400u);
  ASSERT_EQ(te.examples.size(), 400u);
  std::set<std::string> ids;
  for (const auto& e : tr.examples) ids.insert(e.id);
  for (const auto& e : te.examples) ids.insert(e.id);
  EXPECT_EQ(ids.size(), 800u);
  // Same split for -I.
  auto tri = load_task("cruxeval-i", kData, "train");
  for (size_t i = 0; i < 400; ++i) ASSERT_EQ(tri.examples[i].id, tr.examples[i].id);
  // Another seed gives another split.
  LoadOptions o;
  o.cruxeval_seed = 7;
  EXPECT_NE(load_task("cruxeval-o", kData, "train", o).examples[0].id + load_task("cruxeval-o", kData, "train", o).examples[1].id,
            tr.examples[0].id + tr.examples[1].id);

  // Independent implementation of the documented shuffle (splitmix64 + Fisher-Yates), in Python.
  const std::string py = R"PY(
import json
M = (1 << 64) - 1
state = 1234
def nxt():
    global state
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)
rows = [json.loads(l) for l in open(DATA) if l.strip()]
a = list(range(len(rows)))
for i in range(len(a) - 1, 0, -1):
    j = nxt() % (i + 1)
    a[i], a[j] = a[j], a[i]
print(json.dumps([rows[i]["id"] for i in sorted(a[:400])]))
)PY";
  char path[] = "/tmp/lopa-test-crux-XXXXXX.py";
  int fd = mkstemps(path, 3);
  ASSERT_GE(fd, 0);
  std::string script = "DATA = '" + kData + "/cruxeval/cruxeval.jsonl'\n" + py;
  ASSERT_EQ(write(fd, script.data(), script.size()), (ssize_t)script.size());
  close(fd);
  auto j = nlohmann::json::parse(run_capture(std::string("/usr/bin/python3 ") + path));
  unlink(path);
  ASSERT_EQ(j.size(), 400u);
  for (size_t i = 0; i < 400; ++i) ASSERT_EQ(j[i].get<std::string>(), tr.examples[i].id) << i;

  // The split can be written out.
  char out[] = "/tmp/lopa-test-crux-split-XXXXXX";
  int ofd = mkstemp(out);
  close(ofd);
  write_cruxeval_split(kData, kCruxEvalSplitSeed, out);
  auto w = nlohmann::json::parse(run_capture(std::string("cat ") + out));
  unlink(out);
  EXPECT_EQ(w["seed"].get<uint64_t>(), 1234u);
  EXPECT_EQ(w["test"].size(), 400u);
  EXPECT_EQ(w["test"][0].get<std::string>(), te.examples[0].id);
}

TEST(CruxEval, ExamplesAndPrompts) {
  auto all = load_task("cruxeval-o", kData, "all");
  ASSERT_EQ(all.examples.size(), 800u);
  const Example& e = all.examples[0];
  EXPECT_EQ(e.id, "sample_0");
  EXPECT_EQ(e.reference, "[(4, 1), (4, 1), (4, 1), (4, 1), (2, 3), (2, 3)]");
  EXPECT_NE(e.prompt.find("[PYTHON]\ndef f(nums):"), std::string::npos);
  EXPECT_NE(e.prompt.find("assert f([1, 1, 3, 1, 3, 1]) == ?\?\n[/PYTHON]\n[ANSWER]\n"), std::string::npos);
  auto i = load_task("cruxeval-i", kData, "all").examples[0];
  EXPECT_EQ(i.reference, "[1, 1, 3, 1, 3, 1]");
  EXPECT_NE(i.prompt.find("assert f(?\?) == [(4, 1), (4, 1)"), std::string::npos);
  PromptPair p = make_prompt_pair("cruxeval-o", e);
  EXPECT_EQ(p.target, "assert f([1, 1, 3, 1, 3, 1]) == [(4, 1), (4, 1), (4, 1), (4, 1), (2, 3), (2, 3)]\n[/ANSWER]\n");
}

TEST(CruxEval, OfficialPostprocessing) {
  // Output prediction: bare expressions stay; assertions keep the part after "=="; tags are stripped.
  EXPECT_EQ(cruxeval_postprocess("'abc'", false), "'abc'");
  EXPECT_EQ(cruxeval_postprocess("'a==b'", false), "'a==b'");
  EXPECT_EQ(cruxeval_postprocess("assert f('x') == 'xa'\n[/ANSWER]\n", false), "'xa'");
  EXPECT_EQ(cruxeval_postprocess("[THOUGHT]...[/THOUGHT]\n[ANSWER]\nassert f(1) == 2\n[/ANSWER]", false), "2");
  // Input prediction: "f(...)" is kept (official format), a bare input is wrapped.
  EXPECT_EQ(cruxeval_postprocess("assert f('ba', 'nana') == 'banana'\n[/ANSWER]", true), "f('ba', 'nana')");
  EXPECT_EQ(cruxeval_postprocess("'ba', 'nana'", true), "f('ba', 'nana')");
  EXPECT_EQ(cruxeval_postprocess("  f(3)  ", true), "f(3)");
  Example e;
  e.fields = {{"code", "def f(x):\n    return x + 1"}, {"input", "3"}, {"output", "4"}};
  EXPECT_EQ(cruxeval_program(e, "4", false), "def f(x):\n    return x + 1\nassert 4 == 4");
  EXPECT_EQ(cruxeval_program(e, "f(3)", true), "def f(x):\n    return x + 1\nassert 4 == f(3)");
  EXPECT_EQ(cruxeval_program(e, "f(3)", false), "");  // the official harness rejects calling f on the input
}

// Issue 18: a short or malformed cruxeval.jsonl ended in "cruxeval-o test: no examples" from the
// trainer, naming no file. A malformed row names its line; a file too short for the test split (the
// release has 800 samples, train takes 400 of them) names the file and says why.
TEST(CruxEval, MalformedOrShortFilesNameFileAndLine) {
  char dir[] = "/tmp/lopa-test-crux-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir, file = root + "/cruxeval/cruxeval.jsonl";
  ASSERT_EQ(system(("mkdir -p " + root + "/cruxeval").c_str()), 0);
  const std::string row = "{\"code\": \"def f(x):\\n    return x\", \"input\": \"1\", \"output\": \"1\", \"id\": \"sample_0\"}\n";
  auto write = [&](const std::string& text) {
    FILE* f = fopen(file.c_str(), "w");
    fputs(text.c_str(), f);
    fclose(f);
  };
  auto error_of = [&](const std::string& split, bool skip) {
    LoadOptions o;
    o.skip_bad_rows = skip;
    try {
      load_task("cruxeval-o", root, split, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  write(row + "{\"code\": \"def f(x): return x\", \"input\": \"1\", \"output\": 1, \"id\": \"sample_1\"}\n");
  EXPECT_EQ(error_of("all", false),
            file + ":2: malformed row: missing string field 'output' (use skip-bad-rows to skip such rows)");
  EXPECT_EQ(error_of("test", false), error_of("all", false));
  EXPECT_EQ(error_of("test", true), file + ":2: no examples for cruxeval-o test: the file has 1 samples and this split "
                                           "takes those after the first 400 of the seeded permutation (the release has 800)");
  EXPECT_EQ(error_of("all", true), "");
  write("{\"code\": 1}\n");
  EXPECT_EQ(error_of("train", true), file + ":1: no examples for cruxeval-o: all 1 rows were malformed and skipped, the "
                                            "first on this line (missing string field 'code')");
  ASSERT_EQ(system(("rm -rf " + root).c_str()), 0);
}
