// `lopa bench` as a user runs it: JSON keys and the relations between its figures (no speed checks).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace {

const std::string kModel = std::string(LOPA_SHARED_DIR) + "/models/stories260K";

int run(const std::string& cmd, std::string* out) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  out->clear();
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out->append(buf, n);
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

nlohmann::json bench(const std::string& args, const std::string& launcher = "") {
  std::string out;
  const std::string cmd = launcher + std::string(LOPA_BIN) + " bench " + args + " --json";
  EXPECT_EQ(run(cmd, &out), 0) << cmd << "\n" << out;
  const auto nl = out.find_last_of('\n', out.size() - 2);
  return nlohmann::json::parse(nl == std::string::npos ? out : out.substr(nl + 1));
}

void check_train(const nlohmann::json& j, int64_t tokens_per_step) {
  for (const char* k : {"tokens_per_s", "step_ms", "model_flops_per_token", "achieved_gflops", "peak_gflops", "mfu",
                        "peak_rss_bytes"}) {
    ASSERT_TRUE(j.contains(k)) << k << " missing in " << j.dump();
    EXPECT_GT(j[k].get<double>(), 0) << k;
  }
  ASSERT_TRUE(j.contains("flops_convention"));
  EXPECT_NE(j["flops_convention"].get<std::string>().find("4N"), std::string::npos);
  const double tps = j["tokens_per_s"], step = j["step_ms"], fpt = j["model_flops_per_token"];
  EXPECT_NEAR(tps * step / 1e3, tokens_per_step, 1e-6 * tokens_per_step);
  EXPECT_NEAR(j["achieved_gflops"].get<double>(), fpt * tps / 1e9, 1e-9 * fpt * tps / 1e9);
  EXPECT_NEAR(j["mfu"].get<double>(), j["achieved_gflops"].get<double>() / j["peak_gflops"].get<double>(), 1e-12);
  EXPECT_GE(j["peak_rss_bytes_max"].get<int64_t>(), j["peak_rss_bytes"].get<int64_t>());
  // The program links tcmalloc when the build found it (apps/CMakeLists.txt): the linker must not
  // have dropped it, or every training step page-faults its activations in again.
  EXPECT_EQ(j["allocator"].get<std::string>(), LOPA_LINKED_TCMALLOC ? "tcmalloc" : "glibc malloc");
  EXPECT_GT(j["peak_rss_bytes"].get<int64_t>(), j["rss_weights_bytes"].get<int64_t>());
  EXPECT_TRUE(std::isfinite(j["loss"].get<double>()));
}

}  // namespace

TEST(BenchCli, TrainEveryMethod) {
  double frozen_flops = 0;
  for (const std::string m : {"lopa", "pt", "idpg", "lora", "prefix", "fft"}) {
    SCOPED_TRACE(m);
    const auto j = bench("train --model " + kModel + " --method " + m + " --batch-size 2 --seq-len 32 --steps 2");
    check_train(j, 2 * 32);
    EXPECT_EQ(j["method"], m);
    EXPECT_EQ(j["step_ms_all"].size(), 2u);
    // 6N for full fine-tuning, 4N for the frozen-FM methods (the attention term is the same).
    if (m == "pt") frozen_flops = j["model_flops_per_token"];
    if (m == "fft") {
      EXPECT_GT(j["model_flops_per_token"].get<double>(), frozen_flops);
    } else {
      EXPECT_EQ(j["fm_tensors_with_grad"], 0);
    }
    if (m == "lopa" || m == "idpg") {
      EXPECT_GT(j["encode_ms"].get<double>(), 0);
    }
  }
}

TEST(BenchCli, Generate) {
  const auto j = bench("generate --model " + kModel + " --prompt-len 16 --new-tokens 8 --repeats 1");
  for (const char* k : {"prefill_tokens_per_s", "decode_tokens_per_s", "model_flops_per_token", "achieved_gflops",
                        "peak_gflops", "mfu", "peak_rss_bytes", "decode_mfu"}) {
    ASSERT_TRUE(j.contains(k)) << k << " missing in " << j.dump();
    EXPECT_GT(j[k].get<double>(), 0) << k;
  }
  EXPECT_NEAR(j["prefill_tokens_per_s"].get<double>() * j["prefill_ms"].get<double>() / 1e3, 16, 1e-6);
  EXPECT_NEAR(j["mfu"].get<double>(), j["achieved_gflops"].get<double>() / j["peak_gflops"].get<double>(), 1e-12);
}

TEST(BenchCli, TensorParallelTwoRanks) {
  // One JSON line, from rank 0 (stories260K's 8 heads, 4 kv heads and 172 MLP columns split over 2).
  const auto j = bench("train --model " + kModel + " --method lopa --batch-size 2 --seq-len 32 --steps 2 --tp 2",
                       std::string(LOPA_MPIRUN_CMD) + " -np 2 -x OMP_NUM_THREADS=1 ");
  check_train(j, 2 * 32);
  EXPECT_EQ(j["tp"], 2);
  EXPECT_EQ(j["world_size"], 2);
}

TEST(BenchCli, Errors) {
  std::string out;
  EXPECT_NE(run(std::string(LOPA_BIN) + " bench nope", &out), 0);
  EXPECT_NE(out.find("unknown benchmark"), std::string::npos) << out;
  EXPECT_NE(run(std::string(LOPA_BIN) + " bench train --model " + kModel + " --seq-len 5 --method pt", &out), 0);
  EXPECT_NE(out.find("--seq-len"), std::string::npos) << out;
}
