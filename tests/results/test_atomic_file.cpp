// runtime/atomic_file.h: a write replaces the whole file or leaves the old one; failures name the file
// and leave no temporary behind.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <iterator>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/io/atomic_file.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path fresh_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("lopa_atomic_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(AtomicFile, ReplacesTheWholeFileAndLeavesNoTemporary) {
  const auto d = fresh_dir("replace");
  const auto f = (d / "state.json").string();
  lopa::write_file_atomic(f, "a much longer first version\n");
  lopa::write_file_atomic(f, "v2\n", /*durable=*/true);
  EXPECT_EQ(slurp(f), "v2\n");  // not "v2\n" over the tail of the first version
  lopa::write_file_atomic(f, std::string("\0bin\0", 5), false, ".tmp.123");
  EXPECT_EQ(slurp(f), std::string("\0bin\0", 5));
  EXPECT_EQ(std::distance(fs::directory_iterator(d), fs::directory_iterator()), 1)
      << "a temporary was left beside " << f;
  fs::remove_all(d);
}

TEST(AtomicFile, FailuresNameTheFileAndKeepTheOldContents) {
  const auto d = fresh_dir("fail");
  const auto missing = (d / "no_such_dir" / "x.json").string();
  try {
    lopa::write_file_atomic(missing, "x");
    FAIL() << "writing into a missing directory succeeded";
  } catch (const lopa::Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  // The target is a directory: the rename fails, the temporary is removed, the directory stays.
  const auto target = d / "occupied";
  fs::create_directories(target / "inner");
  EXPECT_THROW(lopa::write_file_atomic(target.string(), "x"), lopa::Error);
  EXPECT_TRUE(fs::is_directory(target / "inner"));
  EXPECT_FALSE(fs::exists(target.string() + ".tmp"));
  fs::remove_all(d);
}

}  // namespace
