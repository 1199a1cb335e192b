// Fuzzing the JSON files of a checkpoint directory: config.json (ModelConfig, every architecture of
// the registry by its own parse) and tokenizer.json (Tokenizer, then an encode/decode of a sample).
// Seeds and case counts are in the test names and printed.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "runtime/model/model_config.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

using namespace lopa;
using namespace lopa::fuzz;

namespace {

const std::string kShared = LOPA_SHARED_DIR;
const std::string kSource = LOPA_SOURCE_DIR;

// Valid inputs to mutate: the Llama fixture's config and the tiny configs of the other families.
std::vector<std::string> config_bases() {
  std::vector<std::string> out = {read_bytes(kShared + "/models/stories260K/config.json")};
  for (const char* f : {"gpt2-tiny.json", "codegen-tiny.json", "phi-tiny.json"})
    out.push_back(read_bytes(kSource + "/bench/configs/" + f));
  return out;
}

}  // namespace

TEST(FuzzConfigJson, Seed18002Cases400) {
  const uint64_t seed = 18002;
  const auto bases = config_bases();
  for (const auto& b : bases) ASSERT_FALSE(b.empty());
  const std::string dir = temp_dir("config");
  const std::string path = dir + "/config.json";
  // The unmutated files parse: the mutations start from valid input.
  for (const auto& b : bases) {
    write_bytes(path, b);
    ASSERT_NO_THROW(ModelConfig::from_file(path));
  }
  Tally t;
  for (int i = 0; i < 400 * case_scale(); ++i) {
    Mutator m(seed * 1000003u + (uint64_t)i);
    std::string s = bases[m.below(bases.size())];
    const int n = 1 + (int)m.below(3);
    for (int k = 0; k < n; ++k) mutate_json(s, m, 300);
    run_case(t, "config.json seed=" + std::to_string(seed) + " case=" + std::to_string(i) + ": " + m.note, path, s,
             [](const std::string& p) { ModelConfig::from_file(p); });
  }
  report("config.json", seed, t);
  EXPECT_GT(t.rejected, 0);
  EXPECT_GT(t.accepted, 0);  // some mutations (unused keys, harmless values) must still load
  std::filesystem::remove_all(dir);
}

TEST(FuzzTokenizerJson, Seed18003Cases300) {
  const uint64_t seed = 18003;
  const std::string base = read_bytes(kShared + "/models/stories260K/tokenizer.json");
  ASSERT_FALSE(base.empty());
  const std::string dir = temp_dir("tokenizer");
  const std::string path = dir + "/tokenizer.json";
  const auto parse = [](const std::string& p) {
    Tokenizer tok = Tokenizer::from_files(p);
    // A tokenizer that loads must also work: encode and decode a sample.
    const auto ids = tok.encode("Once upon a time, a little girl named Lily <s> ran.", true);
    (void)tok.decode(ids);
  };
  write_bytes(path, base);
  ASSERT_NO_THROW(parse(path));
  Tally t;
  for (int i = 0; i < 300 * case_scale(); ++i) {
    Mutator m(seed * 1000003u + (uint64_t)i);
    std::string s = base;
    const int n = 1 + (int)m.below(3);
    for (int k = 0; k < n; ++k) mutate_json(s, m, 300);
    run_case(t, "tokenizer.json seed=" + std::to_string(seed) + " case=" + std::to_string(i) + ": " + m.note, path, s,
             parse);
  }
  report("tokenizer.json", seed, t);
  EXPECT_GT(t.rejected, 0);
  EXPECT_GT(t.accepted, 0);
  std::filesystem::remove_all(dir);
}

// Deep nesting (issue 18: 100,000 nested arrays in an unused key of config.json overflowed the stack
// after ~45 s). Every JSON reader parses through runtime/base/json.h's parse_json, which rejects such
// input at once, by name ("nested deeper than 256 levels"), naming the file; nesting within the limit
// still loads. Here config.json and tokenizer.json; safetensors headers and JSONL rows in their files.
void expect_deep_nesting_rejected(const std::string& what, const std::string& path, const std::string& base,
                                  const std::function<void(const std::string&)>& parse) {
  for (const bool objects : {false, true})
    for (const int depth : {300, 100000}) {
      std::string s = base;
      s.insert(s.find('{') + 1, "\"zz_fuzz\": " + Mutator::nested(depth, objects) + ", ");
      write_bytes(path, s);
      const auto t0 = std::chrono::steady_clock::now();
      try {
        parse(path);
        ADD_FAILURE() << what << " nested " << depth << " deep was accepted";
      } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("nested deeper than"), std::string::npos) << what << ": " << msg;
        EXPECT_TRUE(names_file(msg, path)) << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      }
      EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0) << what << depth;
    }
  std::string ok = base;
  ok.insert(ok.find('{') + 1, "\"zz_fuzz\": " + Mutator::nested(200, false) + ", ");
  write_bytes(path, ok);
  EXPECT_NO_THROW(parse(path)) << what << " nested 200 deep";
}

TEST(FuzzDeepNesting, HundredThousandLevelsAreRejectedByName) {
  const std::string dir = temp_dir("deep");
  expect_deep_nesting_rejected("tokenizer.json", dir + "/tokenizer.json",
                               read_bytes(kShared + "/models/stories260K/tokenizer.json"),
                               [](const std::string& p) { Tokenizer::from_files(p); });
  expect_deep_nesting_rejected("config.json", dir + "/config.json", read_bytes(kShared + "/models/stories260K/config.json"),
                               [](const std::string& p) { ModelConfig::from_file(p); });
  std::filesystem::remove_all(dir);
}
