// parse_json's nesting limit (issue 18: 100,000 nested arrays in an unused key of config.json crashed
// lopa after ~45 s): input nested up to the limit parses as nlohmann's unlimited parser parses it,
// deeper input ends at once in a one-line error, and the tokenizer's readers name the file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>

#include "runtime/base/error.h"
#include "runtime/base/json.h"
#include "runtime/tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace {

std::string arrays(int depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}
std::string objects(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"k\":";
  s += "null";
  return s + std::string(depth, '}');
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

fs::path temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lopa_json_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

}  // namespace

TEST(Json, NestingUpToTheLimitParsesLikeTheUnlimitedParser) {
  for (const auto& text : {arrays(lopa::kMaxJsonDepth), objects(lopa::kMaxJsonDepth), arrays(1), std::string("7"),
                           std::string(R"({"a": [1, {"b": [[], {}]}], "s": "[[[[{{{{"})")}) {
    EXPECT_EQ(lopa::parse_json(text), nlohmann::json::parse(text)) << text.substr(0, 40);
    EXPECT_FALSE(lopa::parse_json_or_discarded(text).is_discarded());
  }
  // Brackets inside strings are not nesting.
  const std::string in_string = "[\"" + std::string(100000, '[') + "\"]";
  EXPECT_EQ(lopa::parse_json(in_string)[0].get<std::string>().size(), 100000u);
}

TEST(Json, DeeperNestingIsAOneLineErrorAndFast) {
  for (const auto& text : {arrays(lopa::kMaxJsonDepth + 1), objects(lopa::kMaxJsonDepth + 1),
                           R"({"used": 1, "unused": )" + arrays(100000) + "}"}) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string msg = error_of([&] { lopa::parse_json(text); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NE(msg.find("nested deeper than 256 levels"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_LT(s, 1.0);
    EXPECT_TRUE(lopa::parse_json_or_discarded(text).is_discarded());
    EXPECT_TRUE(lopa::parse_ordered_json_or_discarded(text).is_discarded());
  }
  // A smaller limit applies as given.
  EXPECT_NO_THROW(lopa::parse_json(arrays(3), 3));
  EXPECT_THROW(lopa::parse_json(arrays(4), 3), lopa::Error);
}

TEST(Json, ReadJsonFileNamesTheFile) {
  const auto d = temp_dir("file");
  write(d / "deep.json", "{\"x\": " + arrays(5000) + "}");
  write(d / "bad.json", "{oops");
  write(d / "ok.json", R"({"a": [1, 2]})");
  for (const char* name : {"deep.json", "bad.json", "missing.json"}) {
    const std::string path = (d / name).string();
    const std::string msg = error_of([&] { lopa::read_json_file(path); });
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([&] { lopa::read_json_file((d / "deep.json").string()); }).find("nested deeper"), std::string::npos);
  EXPECT_EQ(lopa::read_json_file((d / "ok.json").string())["a"][1], 2);
  fs::remove_all(d);
}

// tokenizer.json is read by a SAX reader (its own depth check), tokenizer_config.json by parse_json.
TEST(Json, TokenizerFilesNestedTooDeepNameTheFile) {
  const auto d = temp_dir("tok");
  const std::string good = std::string(LOPA_SHARED_DIR) + "/tokenizers/gpt2/tokenizer.json";
  std::ifstream in(good);
  nlohmann::json j = nlohmann::json::parse(in);
  const std::string deep_key = j.dump().substr(0, j.dump().size() - 1) + ", \"unused\": " + arrays(100000) + "}";
  write(d / "tokenizer.json", deep_key);
  const std::string path = (d / "tokenizer.json").string();
  const auto t0 = std::chrono::steady_clock::now();
  std::string msg = error_of([&] { lopa::Tokenizer::from_files(path); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find("nested deeper than 256 levels"), std::string::npos) << msg;

  write(d / "tokenizer_config.json", "{\"x\": " + arrays(100000) + "}");
  msg = error_of([&] { lopa::Tokenizer::from_files(good, (d / "tokenizer_config.json").string()); });
  EXPECT_EQ(msg.rfind((d / "tokenizer_config.json").string() + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find("nested deeper than 256 levels"), std::string::npos) << msg;
  // The same files nested to a legal depth load.
  write(d / "tokenizer.json", j.dump().substr(0, j.dump().size() - 1) + ", \"unused\": " + arrays(200) + "}");
  EXPECT_NO_THROW(lopa::Tokenizer::from_files(path));
  fs::remove_all(d);
}
