// GLUE loaders on the released TSVs (row counts, BOM, unquoted fields, labels), QQP/MNLI on small
// files written here in the documented GLUE layouts, malformed rows, missing files; templates.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "experiments/tasks/task.h"
#include "experiments/tasks/templates.h"
#include "runtime/base/error.h"

using namespace lopa;
namespace fs = std::filesystem;

static const std::string kData = std::string(LOPA_SHARED_DIR) + "/data";

static std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

static int64_t count_label(const Dataset& d, const std::string& l) {
  int64_t n = 0;
  for (const auto& e : d.examples) n += e.label == l;
  return n;
}

// Row counts derived independently with Python:
//   csv.reader(open(f, encoding='utf-8-sig'), delimiter='\t', quoting=csv.QUOTE_NONE), minus the header;
// they equal the official GLUE sizes listed in ../shared/data/PROVENANCE.md.
TEST(Glue, OfficialRowCountsOfEveryFixtureFile) {
  struct C { const char* task; const char* split; size_t rows; };
  const C counts[] = {{"sst2", "train", 67349}, {"sst2", "dev", 872},  {"sst2", "test", 1821},
                      {"rte", "train", 2490},   {"rte", "dev", 277},   {"rte", "test", 3000},
                      {"mrpc", "train", 3668},  {"mrpc", "dev", 408},  {"mrpc", "test", 1725},
                      {"qnli", "dev", 5463},    {"qnli", "test", 5463}};
  for (const auto& c : counts) {
    Dataset d = load_task(c.task, kData, c.split);
    EXPECT_EQ(d.examples.size(), c.rows) << c.task << " " << c.split;
    EXPECT_EQ(d.skipped_rows, 0);
    const bool test = std::string(c.split) == "test";
    for (const auto& e : d.examples) {
      ASSERT_EQ(e.label_index < 0, test) << c.task << " " << c.split << " " << e.id;
      if (!test) {
        ASSERT_EQ(task_info(c.task).labels[e.label_index], e.label);
      }
    }
  }
}

TEST(Glue, LabelDistributionsMatchPython) {
  // Label counts from the same Python reader.
  auto sst = load_task("sst2", kData, "dev");
  EXPECT_EQ(count_label(sst, "1"), 444);
  EXPECT_EQ(count_label(sst, "0"), 428);
  auto rte = load_task("rte", kData, "dev");
  EXPECT_EQ(count_label(rte, "entailment"), 146);
  EXPECT_EQ(count_label(rte, "not_entailment"), 131);
  auto qnli = load_task("qnli", kData, "dev");
  EXPECT_EQ(count_label(qnli, "entailment"), 2702);
  auto mrpc = load_task("mrpc", kData, "dev");
  EXPECT_EQ(count_label(mrpc, "1"), 279);
}

TEST(Glue, MrpcBomHeaderAndUnquotedFields) {
  auto d = load_task("mrpc", kData, "dev");
  const auto& e = d.examples.at(0);
  EXPECT_EQ(e.id, "0");  // no index column in train/dev: the row number
  EXPECT_EQ(e.label, "1");
  EXPECT_EQ(e.fields.at("sentence1"),
            "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .");
  // A leading double quote is text, not CSV quoting.
  EXPECT_EQ(e.fields.at("sentence2"), "\" The foodservice pie business does not fit our long-term growth strategy .");
  auto t = load_task("mrpc", kData, "test");
  EXPECT_EQ(t.examples.back().id, "1724");
}

TEST(Glue, SstFieldsAndTestIndex) {
  auto d = load_task("sst2", kData, "dev");
  EXPECT_EQ(d.examples.front().fields.at("sentence"), "it 's a charming and often affecting journey . ");
  EXPECT_EQ(d.examples.back().id, "871");
  EXPECT_EQ(load_task("rte", kData, "test").examples.back().id, "2999");
  EXPECT_EQ(load_task("qnli", kData, "test").examples.back().id, "5462");
}

static fs::path temp_root(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("lopa-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

static void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

TEST(Glue, QqpFromTheDocumentedLayout) {
  fs::path root = temp_root("qqp");
  write(root / "glue/QQP/dev.tsv",
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "201359\t303345\t303346\tWhy are African-Americans so beautiful?\tWhy are hispanics so beautiful?\t0\n"
        "263843\t69383\t380476\tI want to pursue PhD in Computer Science?\tI handle social media for a non-profit.\t0\n"
        "172974\t266948\t175089\tIs there a reason why we should travel alone?\tWhat are some reasons to travel alone?\t1\n");
  write(root / "glue/QQP/test.tsv", "id\tquestion1\tquestion2\n0\tHow?\tWhy?\n1\t\"Quoted\tstill one field\n");
  auto d = load_task("qqp", root.string(), "dev");
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.examples[2].id, "172974");
  EXPECT_EQ(d.examples[2].label, "1");
  EXPECT_EQ(d.examples[2].label_index, 1);
  EXPECT_EQ(d.examples[0].fields.at("question2"), "Why are hispanics so beautiful?");
  EXPECT_EQ(task_info("qqp").positive_label, "1");
  auto t = load_task("qqp", root.string(), "test");
  ASSERT_EQ(t.examples.size(), 2u);
  EXPECT_EQ(t.examples[1].fields.at("question1"), "\"Quoted");
  EXPECT_EQ(t.examples[1].label_index, -1);

  // A malformed row (5 fields) names file and line; skip-bad-rows skips and counts it.
  write(root / "glue/QQP/train.tsv",
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "1\t1\t2\ta?\tb?\t0\n"
        "2\t3\t4\tc?\td?\n"
        "3\t5\t6\te?\tf?\t7\n"
        "4\t7\t8\tg?\th?\t1\n");
  std::string err = error_of([&] { load_task("qqp", root.string(), "train"); });
  EXPECT_NE(err.find((root / "glue/QQP/train.tsv").string() + ":3:"), std::string::npos) << err;
  LoadOptions skip;
  skip.skip_bad_rows = true;
  auto tr = load_task("qqp", root.string(), "train", skip);
  EXPECT_EQ(tr.examples.size(), 2u);
  EXPECT_EQ(tr.skipped_rows, 2);  // the short row and the row with label "7"
  fs::remove_all(root);
}

TEST(Glue, MnliMatchedMismatchedFromTheDocumentedLayout) {
  fs::path root = temp_root("mnli");
  const std::string hdr =
      "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
      "sentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n";
  auto row = [](int i, const std::string& genre, const std::string& s1, const std::string& s2, const std::string& l) {
    return std::to_string(i) + "\t" + std::to_string(100 + i) + "\t" + std::to_string(100 + i) + "e\t" + genre +
           "\t( ( x ) )\t( ( y ) )\t(ROOT (S x))\t(ROOT (S y))\t" + s1 + "\t" + s2 + "\t" + l + "\t" + l + "\t" + l +
           "\t" + l + "\t" + l + "\t" + l + "\n";
  };
  write(root / "glue/MNLI/dev_matched.tsv", hdr + row(0, "government", "The cat sat.", "A cat sat.", "entailment") +
                                                row(1, "fiction", "He left.", "He stayed.", "contradiction"));
  write(root / "glue/MNLI/dev_mismatched.tsv", hdr + row(0, "letters", "It rained.", "It was wet.", "neutral"));
  write(root / "glue/MNLI/test_matched.tsv",
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
        "sentence2_parse\tsentence1\tsentence2\n0\t1\t1e\tslate\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tA.\tB.\n");
  auto m = load_task("mnli", root.string(), "dev_matched");
  ASSERT_EQ(m.examples.size(), 2u);
  EXPECT_EQ(m.examples[1].label, "contradiction");
  EXPECT_EQ(m.examples[1].label_index, 2);
  EXPECT_EQ(m.examples[1].fields.at("sentence2"), "He stayed.");
  EXPECT_EQ(m.examples[1].fields.at("genre"), "fiction");
  auto mm = load_task("mnli", root.string(), "dev_mismatched");
  ASSERT_EQ(mm.examples.size(), 1u);
  EXPECT_EQ(mm.examples[0].label_index, 1);
  auto t = load_task("mnli", root.string(), "test_matched");
  ASSERT_EQ(t.examples.size(), 1u);
  EXPECT_EQ(t.examples[0].label_index, -1);
  EXPECT_EQ(task_info("mnli").eval_split, "dev_matched");
  // "dev" is not an MNLI split.
  EXPECT_NE(error_of([&] { load_task("mnli", root.string(), "dev"); }).find("dev_mismatched"), std::string::npos);
  fs::remove_all(root);
}

TEST(Glue, MissingFilesSayWhichAndWhereTheyArePublished) {
  std::string err = error_of([] { load_task("qnli", kData, "train"); });
  EXPECT_NE(err.find(kData + "/glue/QNLI/train.tsv"), std::string::npos) << err;
  EXPECT_NE(err.find("https://dl.fbaipublicfiles.com/glue/data/QNLIv2.zip"), std::string::npos) << err;
  err = error_of([] { load_task("mnli", kData, "dev_matched"); });
  EXPECT_NE(err.find("glue/MNLI/dev_matched.tsv"), std::string::npos) << err;
  err = error_of([] { load_task("mbpp", "/nonexistent", "test"); });
  EXPECT_NE(err.find("/nonexistent/mbpp/mbpp_test_release_v1.jsonl"), std::string::npos) << err;
  EXPECT_NE(err.find("github.com/amazon-science/mxeval"), std::string::npos) << err;
  EXPECT_NE(error_of([] { load_task("cola", kData, "dev"); }).find("sst2"), std::string::npos);
}

TEST(Templates, DefaultPairsAndVerbalizers) {
  auto d = load_task("sst2", kData, "dev");
  PromptPair p = make_prompt_pair("sst2", d.examples[0]);
  EXPECT_EQ(p.prompt, "Sentence: it 's a charming and often affecting journey . \nSentiment:");
  EXPECT_EQ(p.target, " positive");
  auto c = label_candidates("rte", load_task("rte", kData, "dev").examples[0]);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].target, " yes");
  EXPECT_EQ(c[1].target, " no");
  EXPECT_EQ(c[0].prompt.rfind("Premise: Dana Reeve", 0), 0u);
  EXPECT_EQ(default_verbalizers("mnli").size(), 3u);
  EXPECT_EQ(default_verbalizers("mrpc")[1], " yes");
}

TEST(Templates, OverrideFromConfigString) {
  Example e;
  e.fields = {{"sentence", "great {fun}"}, {"label", "1"}};
  e.label = "1";
  e.label_index = 1;
  TemplateConfig cfg;
  cfg.prompt = "Review: {sentence}\\nStars {{0-5}}:";
  cfg.verbalizers = " bad| good";
  PromptPair p = make_prompt_pair("sst2", e, cfg);
  EXPECT_EQ(p.prompt, "Review: great {fun}\nStars {0-5}:");  // braces in values are not re-expanded
  EXPECT_EQ(p.target, " good");
  cfg.prompt = "{nope}";
  EXPECT_NE(error_of([&] { make_prompt_pair("sst2", e, cfg); }).find("{nope}"), std::string::npos);
  cfg.prompt = "";
  cfg.verbalizers = "a|b|c";
  EXPECT_THROW(make_prompt_pair("sst2", e, cfg), Error);
}

TEST(Templates, PredictLabelIsAlwaysValid) {
  EXPECT_EQ(predict_label({-3.0, -1.0, -2.0}), 1);
  EXPECT_EQ(predict_label({-1.0, -1.0}), 0);  // ties: lowest index
  EXPECT_EQ(predict_label({NAN, -5.0}), 1);   // NaN never wins
  EXPECT_EQ(predict_label({NAN, NAN}), 0);
  EXPECT_EQ(predict_label({-INFINITY, -INFINITY, -1e30}), 2);
  EXPECT_THROW(predict_label({}), Error);
  EXPECT_EQ(predict_label_name("mnli", {-2.0, -1.0, -3.0}), "neutral");
  EXPECT_EQ(predict_label_name("rte", {-0.1, -0.2}), "entailment");
  EXPECT_THROW(predict_label_name("rte", {-0.1}), Error);
}

// Issue 18: invalid UTF-8 in a GLUE TSV surfaced only at tokenization ("Tokenizer::encode: invalid
// UTF-8 at byte 84"), naming no file. It is a malformed row now, with file and line (skippable); an
// empty result names the file and the first skipped row.
TEST(Glue, InvalidUtf8AndEmptyResultsNameFileAndLine) {
  fs::path root = temp_root("utf8");
  const std::string file = (root / "glue/SST-2/train.tsv").string();
  write(file, "sentence\tlabel\ngood film \t1\nbad \xc3\x28 film \t0\nfine caf\xc3\xa9 \t1\n");
  EXPECT_EQ(error_of([&] { load_task("sst2", root.string(), "train"); }),
            file + ":3: malformed row: invalid UTF-8 at byte 5 (use skip-bad-rows to skip such rows)");
  LoadOptions skip;
  skip.skip_bad_rows = true;
  auto d = load_task("sst2", root.string(), "train", skip);
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.skipped_rows, 1);
  EXPECT_EQ(d.examples[1].fields.at("sentence"), "fine caf\xc3\xa9 ");  // valid multi-byte text stays
  // Overlong forms, surrogates and a truncated sequence at the end of the line are invalid too.
  for (const std::string bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    write(file, "sentence\tlabel\nx" + bad + "\t1\n");
    EXPECT_EQ(error_of([&] { load_task("sst2", root.string(), "train"); }),
              file + ":2: malformed row: invalid UTF-8 at byte 2 (use skip-bad-rows to skip such rows)");
  }
  write(file, "sente\xffnce\tlabel\nx\t1\n");
  EXPECT_EQ(error_of([&] { load_task("sst2", root.string(), "train"); }), file + ":1: invalid UTF-8 at byte 6 of the header");
  // Every row skipped, or no rows at all.
  write(file, "sentence\tlabel\na\xff\t1\nb\t2\n");
  EXPECT_EQ(error_of([&] { load_task("sst2", root.string(), "train", skip); }),
            file + ":2: no examples for sst2 train: all 2 rows were malformed and skipped, the first on this line "
                   "(invalid UTF-8)");
  write(file, "sentence\tlabel\n");
  EXPECT_EQ(error_of([&] { load_task("sst2", root.string(), "train"); }), file + ":1: no examples for sst2 train in the file");
  fs::remove_all(root);
}
