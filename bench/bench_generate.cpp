// bench_generate: prefill and decode tokens/s of the C++ runtime against bench/llama_ref.py (PyTorch
// eager, HF-style KV cache) on the same checkpoint, same shapes and thread count, in one run; prints ratios.
//
//   bench_generate --model DIR [--prompt-len 64] [--new-tokens 64] [--batch 1] [--repeats 3]
//                  [--dtype float32|bfloat16] [--no-ref] [--json]
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/blas_info.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "runtime/kv_cache.h"
#include "runtime/llama.h"

using namespace lopa;

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  LOPA_CHECK(p, "cannot run: ", cmd);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  LOPA_CHECK(rc == 0, "reference failed (", rc, "): ", cmd);
  return out;
}
}  // namespace

int main(int argc, char** argv) try {
  std::string model, dtype_s = "float32";
  int64_t P = 64, N = 64, B = 1, R = 3;
  bool ref = true, json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      LOPA_CHECK(i + 1 < argc, a, ": missing value");
      return argv[++i];
    };
    if (a == "--model") model = val();
    else if (a == "--prompt-len") P = std::stoll(val());
    else if (a == "--new-tokens") N = std::stoll(val());
    else if (a == "--batch") B = std::stoll(val());
    else if (a == "--repeats") R = std::stoll(val());
    else if (a == "--dtype") dtype_s = val();
    else if (a == "--no-ref") ref = false;
    else if (a == "--json") json = true;
    else lopa::fail("bench_generate: unknown option '", a, "'");
  }
  LOPA_CHECK(!model.empty(), "bench_generate: --model DIR is required");
  const auto dtype = parse_dtype(dtype_s, "--dtype");
  const int threads = ensure_threads();
  auto m = CausalLM::load(model, ProcessGroup::single(), dtype);
  at::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(0);
  auto ids = at::randint(3, m.vocab_size(), {B, P}, gen, at::kLong);

  double best_pre = 0, best_dec = 0;
  for (int64_t rep = 0; rep < R; ++rep) {
    auto cache = KVCache::for_model(m, B, P + N + 1);
    const double t0 = now();
    auto h = m.forward(m.embed(ids), {}, &cache);
    auto next = m.lm_logits(h.narrow(1, P - 1, 1)).argmax(-1);  // B × 1
    const double t1 = now();
    for (int64_t s = 0; s < N; ++s) {
      h = m.forward(m.embed(next), {}, &cache);
      next = m.lm_logits(h).argmax(-1);
    }
    const double t2 = now();
    best_pre = std::max(best_pre, B * P / (t1 - t0));
    best_dec = std::max(best_dec, B * N / (t2 - t1));
  }

  nlohmann::ordered_json out;
  out["model"] = model;
  out["parameters"] = m.num_parameters();
  out["dtype"] = dtype_s;
  out["batch"] = B;
  out["prompt_len"] = P;
  out["new_tokens"] = N;
  out["threads"] = threads;
  out["blas"] = blas_description();
  out["lopa_prefill_tok_s"] = best_pre;
  out["lopa_decode_tok_s"] = best_dec;
  if (ref) {
    const std::string cmd = "/usr/bin/python3 " + std::string(LOPA_SOURCE_DIR) + "/bench/llama_ref.py bench --model " +
                            model + " --prompt-len " + std::to_string(P) + " --new-tokens " + std::to_string(N) +
                            " --batch " + std::to_string(B) + " --repeats " + std::to_string(R) + " --threads " +
                            std::to_string(threads) + " --dtype " + dtype_s;
    auto r = nlohmann::json::parse(capture(cmd));
    out["torch_prefill_tok_s"] = r["prefill_tok_s"];
    out["torch_decode_tok_s"] = r["decode_tok_s"];
    out["prefill_ratio"] = best_pre / r["prefill_tok_s"].get<double>();
    out["decode_ratio"] = best_dec / r["decode_tok_s"].get<double>();
  }
  if (json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::printf("%s (%lld params, %s, batch %lld, prompt %lld, %lld new, %d threads)\n", model.c_str(),
                static_cast<long long>(m.num_parameters()), dtype_s.c_str(), static_cast<long long>(B),
                static_cast<long long>(P), static_cast<long long>(N), threads);
    std::printf("  lopa : prefill %10.1f tok/s   decode %9.1f tok/s\n", best_pre, best_dec);
    if (ref) {
      std::printf("  torch: prefill %10.1f tok/s   decode %9.1f tok/s\n", out["torch_prefill_tok_s"].get<double>(),
                  out["torch_decode_tok_s"].get<double>());
      std::printf("  ratio: prefill %10.2fx        decode %9.2fx\n", out["prefill_ratio"].get<double>(),
                  out["decode_ratio"].get<double>());
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bench_generate: error: " << e.what() << std::endl;
  return 1;
}
