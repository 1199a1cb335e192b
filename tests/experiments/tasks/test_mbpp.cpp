// MBPP loader (the paper's 487/487 split in the MBXP layout) and completion post-processing.
#include <gtest/gtest.h>

#include "experiments/tasks/mbpp.h"
#include "experiments/tasks/task.h"
#include "runtime/base/error.h"

using namespace lopa;

static const std::string kData = std::string(LOPA_SHARED_DIR) + "/data";

TEST(Mbpp, PaperSplit487And487) {
  auto tr = load_task("mbpp", kData, "train");
  auto te = load_task("mbpp", kData, "test");
  ASSERT_EQ(tr.examples.size(), 487u);
  ASSERT_EQ(te.examples.size(), 487u);
  EXPECT_EQ(tr.examples.front().id, "MBPP/1");
  EXPECT_EQ(tr.examples.back().id, "MBPP/487");
  EXPECT_EQ(te.examples.front().id, "MBPP/488");
  EXPECT_EQ(te.examples.back().id, "MBPP/974");
  const Example& e = te.examples.front();
  EXPECT_EQ(e.entry_point, "area_pentagon");
  EXPECT_EQ(e.prompt.rfind("\n\ndef area_pentagon(a):\n", 0), 0u);
  EXPECT_NE(e.tests.find("def check(candidate):"), std::string::npos);
  EXPECT_EQ(e.reference.rfind("  import math", 0), 0u);
  EXPECT_EQ(load_task("mbpp", kData, "all").examples.size(), 974u);
}

TEST(Mbpp, ProgramIsWhatMxevalRuns) {
  Example e;
  e.prompt = "def f(x):\n";
  e.tests = "\n\ndef check(candidate):\n    assert candidate(1) == 2\n";
  e.entry_point = "f";
  EXPECT_EQ(mbpp_program(e, "    return x + 1"),
            "def f(x):\n    return x + 1\n\ndef check(candidate):\n    assert candidate(1) == 2\n\ncheck(f)");
}

TEST(Mbpp, PostprocessStopsAtTopLevelCode) {
  // Stop sequences.
  EXPECT_EQ(mbpp_postprocess("    return a + b\n\ndef main():\n    pass\n"), "    return a + b\n");
  EXPECT_EQ(mbpp_postprocess("    return 1\nprint(f(2))"), "    return 1");
  EXPECT_EQ(mbpp_postprocess("    return 1\nif __name__ == '__main__':\n    main()"), "    return 1");
  EXPECT_EQ(mbpp_postprocess("    return 1\n# test\nassert f(1) == 1"), "    return 1");
  EXPECT_EQ(mbpp_postprocess("    return 1\nclass A:\n    pass"), "    return 1");
  // Function-body extraction: any other top-level line ends the body; indented and blank lines stay.
  EXPECT_EQ(mbpp_postprocess("    x = 1\n\n    if x:\n        return x\nresult = f(3)\n"),
            "    x = 1\n\n    if x:\n        return x\n");
  EXPECT_EQ(mbpp_postprocess("\treturn 1\n```\nmore"), "\treturn 1");
  EXPECT_EQ(mbpp_postprocess("    return 1"), "    return 1");
  EXPECT_EQ(mbpp_postprocess("x = 1"), "");
}

TEST(Mbpp, MalformedRowNamesFileAndLine) {
  char dir[] = "/tmp/lopa-test-mbpp-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir;
  ASSERT_EQ(system(("mkdir -p " + root + "/mbpp").c_str()), 0);
  FILE* f = fopen((root + "/mbpp/mbpp_test_release_v1.jsonl").c_str(), "w");
  fputs("{\"task_id\": \"MBPP/1\", \"prompt\": \"p\", \"canonical_solution\": \"c\", \"entry_point\": \"e\", \"test\": \"t\"}\n", f);
  fputs("{\"task_id\": \"MBPP/2\", \"prompt\": \"p\"}\n", f);
  fputs("not json\n", f);
  fclose(f);
  try {
    load_task("mbpp", root, "test");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mbpp_test_release_v1.jsonl:2:"), std::string::npos) << e.what();
  }
  LoadOptions o;
  o.skip_bad_rows = true;
  auto d = load_task("mbpp", root, "test", o);
  EXPECT_EQ(d.examples.size(), 1u);
  EXPECT_EQ(d.skipped_rows, 2);
  ASSERT_EQ(system(("rm -rf " + root).c_str()), 0);
}

// Issue 18: a split whose rows were all malformed (and skipped) ended in "mbpp test: no examples"
// from the trainer, naming no file; the loader names the file and the first bad row.
TEST(Mbpp, NoExamplesNamesFileAndFirstSkippedRow) {
  char dir[] = "/tmp/lopa-test-mbpp-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir, file = root + "/mbpp/mbpp_test_release_v1.jsonl";
  ASSERT_EQ(system(("mkdir -p " + root + "/mbpp").c_str()), 0);
  FILE* f = fopen(file.c_str(), "w");
  fputs("\n{\"task_id\": \"MBPP/2\", \"prompt\": \"p\"}\n[1, 2]\n", f);
  fclose(f);
  LoadOptions o;
  o.skip_bad_rows = true;
  try {
    load_task("mbpp", root, "test", o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), file + ":2: no examples for mbpp test: all 2 rows were malformed and skipped, the "
                                            "first on this line (missing string field 'canonical_solution')");
  }
  f = fopen(file.c_str(), "w");
  fclose(f);
  try {
    load_task("mbpp", root, "test");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), file + ":1: no examples for mbpp test in the file");
  }
  ASSERT_EQ(system(("rm -rf " + root).c_str()), 0);
}
