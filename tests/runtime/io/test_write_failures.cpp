// Failing loudly when a write fails (issue 18): a full disk (ENOSPC, from /dev/full or a full tmpfs)
// and a file size limit (EFBIG under RLIMIT_FSIZE, SIGXFSZ ignored, in a child process) each end in
// one lopa::Error naming the target, the temporary removed and the previous file kept. And the JSON
// readers of the runtime refuse input nested deeper than kMaxJsonDepth, naming the file.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "lopa/adapter_io.h"
#include "runtime/base/error.h"
#include "runtime/base/json.h"
#include "runtime/distributed/process_group.h"
#include "runtime/io/atomic_file.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/safetensors.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/model_config.h"

namespace fs = std::filesystem;

namespace {

const std::string kModel = std::string(LOPA_SHARED_DIR) + "/models/stories260K";

fs::path temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lopa_wfail_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lopa::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a lopa::Error: ") + e.what();
  }
  return "";
}

// Points PATH.tmp at /dev/full: every write to it fails with ENOSPC.
void make_tmp_full(const fs::path& target) {
  fs::remove(target.string() + ".tmp");
  fs::create_symlink("/dev/full", target.string() + ".tmp");
}

// Runs `f` in a child whose files may not exceed `limit` bytes (SIGXFSZ ignored, so a write past it
// fails with EFBIG instead of killing the process); returns the error message it caught.
std::string error_under_file_size_limit(rlim_t limit, const std::function<void()>& f) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit rl{limit, limit};
    if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(3);
    const std::string msg = error_of(f);
    if (::write(fds[1], msg.data(), msg.size()) != (ssize_t)msg.size()) ::_exit(4);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  return msg;
}

void expect_one_line_naming(const std::string& msg, const std::string& path, const std::string& reason) {
  EXPECT_EQ(msg.rfind(path + ": write failed (", 0), 0u) << msg;
  EXPECT_NE(msg.find(reason), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

lopa::NamedTensors big_tensors() {
  return {{"a", at::arange(300000, at::kFloat)}, {"b", at::ones({1000}, at::kDouble)}};  // ~1.2 MB
}

// Only the named files (no temporary) in `d`.
std::vector<std::string> listing(const fs::path& d) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(d)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(WriteFailures, AtomicFileOnAFullDiskNamesTheFileAndKeepsTheOldOne) {
  const auto d = temp_dir("atomic");
  const auto f = (d / "state.json").string();
  lopa::write_file_atomic(f, "old\n");
  make_tmp_full(f);
  const std::string msg = error_of([&] { lopa::write_file_atomic(f, std::string(1 << 20, 'x'), /*durable=*/true); });
  expect_one_line_naming(msg, f, "No space left on device");
  EXPECT_EQ(slurp(f), "old\n");
  EXPECT_EQ(listing(d), std::vector<std::string>{"state.json"});
  // A small write fits in the page cache of /dev/full but is still refused (reported by write or close).
  make_tmp_full(f);
  expect_one_line_naming(error_of([&] { lopa::write_file_atomic(f, "x"); }), f, "No space left on device");
  EXPECT_EQ(listing(d), std::vector<std::string>{"state.json"});
  fs::remove_all(d);
}

TEST(WriteFailures, AtomicFileUnderAFileSizeLimit) {
  const auto d = temp_dir("fsize");
  const auto f = (d / "big.bin").string();
  const std::string msg = error_under_file_size_limit(64 * 1024, [&] { lopa::write_file_atomic(f, std::string(1 << 20, 'x')); });
  expect_one_line_naming(msg, f, "File too large");
  EXPECT_TRUE(listing(d).empty());
  // An AtomicFile destroyed without commit (an exception on the way) removes its temporary.
  {
    lopa::AtomicFile a(f);
    a.write("partial");
    EXPECT_TRUE(fs::exists(a.tmp_path()));
  }
  EXPECT_TRUE(listing(d).empty());
  fs::remove_all(d);
}

TEST(WriteFailures, SafetensorsAdapterAndSavePretrained) {
  const auto d = temp_dir("st");
  const auto st = (d / "model.safetensors").string();
  make_tmp_full(st);
  expect_one_line_naming(error_of([&] { lopa::save_safetensors(st, big_tensors()); }), st, "No space left on device");
  EXPECT_TRUE(listing(d).empty());
  expect_one_line_naming(error_under_file_size_limit(100 * 1024, [&] { lopa::save_safetensors(st, big_tensors()); }), st,
                         "File too large");
  EXPECT_TRUE(listing(d).empty());
  // The same tensors written without a limit read back exactly (the error path is the only change).
  lopa::save_safetensors(st, big_tensors());
  EXPECT_TRUE(lopa::SafetensorsFile::open(st).tensor("a").equal(big_tensors()[0].second));

  // An adapter: weights then config, each failing alone.
  const auto ad = d / "adapter";
  fs::create_directories(ad);
  make_tmp_full(ad / "adapter_model.safetensors");
  expect_one_line_naming(error_of([&] {
                           lopa::write_adapter(ad.string(), big_tensors(), {{"r", 1}}, "adapter_config.json",
                                               "adapter_model.safetensors");
                         }),
                         (ad / "adapter_model.safetensors").string(), "No space left on device");
  make_tmp_full(ad / "adapter_config.json");
  expect_one_line_naming(error_of([&] {
                           lopa::write_adapter(ad.string(), big_tensors(), {{"r", 1}}, "adapter_config.json",
                                               "adapter_model.safetensors");
                         }),
                         (ad / "adapter_config.json").string(), "No space left on device");
  EXPECT_EQ(listing(ad), std::vector<std::string>{"adapter_model.safetensors"});

  // save_pretrained of a real model.
  const auto pg = lopa::ProcessGroup::single();
  const auto fm = lopa::CausalLM::load(kModel, pg);
  const auto out = d / "saved";
  fs::create_directories(out);
  make_tmp_full(out / "model.safetensors");
  expect_one_line_naming(error_of([&] { fm.save_pretrained(out.string()); }), (out / "model.safetensors").string(),
                         "No space left on device");
  for (const auto& name : listing(out)) EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
  fs::remove_all(d);
}

// A real full file system: a 256 KiB tmpfs (needs CAP_SYS_ADMIN, as CI's root has; skipped otherwise).
TEST(WriteFailures, SmallTmpfsFillsUp) {
  const auto d = temp_dir("tmpfs");
  if (::mount("tmpfs", d.c_str(), "tmpfs", 0, "size=256k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "); /dev/full and RLIMIT_FSIZE cover it";
  const auto st = (d / "model.safetensors").string();
  expect_one_line_naming(error_of([&] { lopa::save_safetensors(st, big_tensors()); }), st, "No space left on device");
  EXPECT_TRUE(listing(d).empty());
  const auto js = (d / "x.json").string();
  expect_one_line_naming(error_of([&] { lopa::write_file_atomic(js, std::string(1 << 20, 'x'), true); }), js,
                         "No space left on device");
  EXPECT_TRUE(listing(d).empty());
  lopa::write_file_atomic(js, "{}\n", true);  // the space is free again
  EXPECT_EQ(slurp(js), "{}\n");
  ::umount(d.c_str());
  fs::remove_all(d);
}

namespace {
std::string deep(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

void expect_too_deep(const std::string& msg, const std::string& path) {
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find("nested deeper than 256 levels"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}
}  // namespace

TEST(DeepJson, ConfigSafetensorsIndexAndAdapterConfig) {
  const auto d = temp_dir("deep");
  // config.json with 100,000 nested arrays in an unused key (crashed lopa info after ~45 s).
  std::string cfg = slurp(kModel + "/config.json");
  cfg = cfg.substr(0, cfg.rfind('}')) + ", \"unused\": " + deep(100000) + "}";
  const auto t0 = std::chrono::steady_clock::now();
  expect_too_deep(error_of([&] { lopa::ModelConfig::from_json_text(cfg, "cfg.json"); }), "cfg.json");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  std::ofstream(d / "config.json") << cfg;
  expect_too_deep(error_of([&] { lopa::ModelConfig::from_file((d / "config.json").string()); }),
                  (d / "config.json").string());

  // A safetensors header: {"__metadata__": ..., "t": deep} with a correct length prefix.
  const std::string header = "{\"x\": " + deep(5000) + "}";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;
  const auto st = (d / "deep.safetensors").string();
  std::ofstream(st, std::ios::binary) << bytes;
  const std::string msg = error_of([&] { lopa::SafetensorsFile::open(st); });
  expect_too_deep(msg, st);

  // A sharded index.
  const auto sharded = d / "sharded";
  fs::create_directories(sharded);
  std::ofstream(sharded / "model.safetensors.index.json") << "{\"weight_map\": {}, \"x\": " << deep(5000) << "}";
  expect_too_deep(error_of([&] { lopa::Checkpoint::open(sharded.string()); }),
                  (sharded / "model.safetensors.index.json").string());

  // An adapter config.
  std::ofstream(d / "adapter_config.json") << "{\"r\": " << deep(100000) << "}";
  expect_too_deep(error_of([&] { lopa::read_adapter_config(d.string(), "adapter_config.json"); }),
                  (d / "adapter_config.json").string());
  fs::remove_all(d);
}
