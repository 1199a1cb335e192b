#include "experiments/bench/generate_bench.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "experiments/bench/bench_probe.h"
#include "experiments/bench/model_costs.h"
#include "runtime/base/blas_info.h"
#include "runtime/base/host_allocator.h"
#include "runtime/io/dtype.h"
#include "runtime/base/error.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/causal_lm.h"
#include "runtime/distributed/process_group.h"

namespace lopa {

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double reduce(const ProcessGroup& pg, double v, ReduceOp op) {
  auto t = at::tensor({v}, at::kDouble);
  pg.world->all_reduce(t, op);
  return t.item<double>();
}
}  // namespace

nlohmann::ordered_json run_generate_bench(const GenerateBenchOptions& o, const ProcessGroup& pg) {
  LOPA_CHECK(o.batch_size >= 1 && o.prompt_len >= 1 && o.new_tokens >= 1 && o.repeats >= 1,
             "lopa bench generate: --batch-size, --prompt-len, --new-tokens and --repeats must be positive");
  const auto dtype = parse_dtype(o.dtype, "--dtype");
  const int threads = ensure_threads();
  const auto m = CausalLM::load(o.model, pg, dtype);
  at::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(o.seed));
  const int64_t B = o.batch_size, P = o.prompt_len, N = o.new_tokens;
  auto ids = at::randint(3, m.vocab_size(), {B, P}, gen, at::kLong);

  double pre = 1e30, dec = 1e30;
  for (int64_t rep = 0; rep < o.repeats; ++rep) {
    auto cache = KVCache::for_model(m, B, P + N + 1);
    pg.world->barrier();
    const double t0 = now();
    auto h = m.forward(m.embed(ids), {}, &cache);
    auto next = m.lm_logits(h.narrow(1, P - 1, 1)).argmax(-1);  // B × 1
    const double t1 = now();
    for (int64_t s = 0; s < N; ++s) {
      h = m.forward(m.embed(next), {}, &cache);
      next = m.lm_logits(h).argmax(-1);
    }
    const double t2 = now();
    pre = std::min(pre, reduce(pg, t1 - t0, ReduceOp::Max));
    dec = std::min(dec, reduce(pg, t2 - t1, ReduceOp::Max));
  }
  const int64_t rss_peak = peak_rss_bytes();
  const auto& c = m.config();
  std::set<int64_t> sizes;
  for (int64_t n : {c.hidden_size, c.intermediate_size / pg.tp_size, int64_t(1024)})
    sizes.insert(std::clamp<int64_t>((n + 63) / 64 * 64, 256, 2048));
  pg.world->barrier();
  const double peak = reduce(pg, matmul_peak_gflops(dtype, {sizes.begin(), sizes.end()}, 5, m.device()), ReduceOp::Sum);

  // Prefill: the LM head runs at one position only; decode: at every generated position.
  const double pre_tps = B * P / pre, dec_tps = B * N / dec;
  const double pre_fpt = forward_flops_per_token(m.architecture(), P) -
                         2.0 * static_cast<double>(c.vocab_size) * c.hidden_size * (P - 1) / P;
  const double dec_fpt = forward_flops_per_token(m.architecture(), P + N / 2.0);
  nlohmann::ordered_json j;
  j["prefill_tokens_per_s"] = pre_tps;
  j["decode_tokens_per_s"] = dec_tps;
  j["prefill_ms"] = pre * 1e3;
  j["decode_ms_per_token"] = dec * 1e3 / N;
  j["model_flops_per_token"] = pre_fpt;  // prefill
  j["achieved_gflops"] = pre_fpt * pre_tps / 1e9;
  j["peak_gflops"] = peak;
  j["mfu"] = pre_fpt * pre_tps / 1e9 / peak;
  j["decode_model_flops_per_token"] = dec_fpt;
  j["decode_achieved_gflops"] = dec_fpt * dec_tps / 1e9;
  j["decode_mfu"] = dec_fpt * dec_tps / 1e9 / peak;
  j["peak_rss_bytes"] = rss_peak;
  j["peak_rss_bytes_max"] = static_cast<int64_t>(reduce(pg, static_cast<double>(rss_peak), ReduceOp::Max));
  j["flops_convention"] = flops_convention() + "; prefill: LM head at the last prompt position only, attention "
                          "over the full P x P score matrix (as computed, causal mask applied after); decode: context P + N/2";
  j["model"] = o.model;
  j["parameters"] = m.num_parameters();
  j["dtype"] = o.dtype;
  j["batch_size"] = B;
  j["prompt_len"] = P;
  j["new_tokens"] = N;
  j["repeats"] = o.repeats;
  j["tp"] = pg.tp_size;
  j["threads"] = threads;
  j["blas"] = blas_description();
  j["allocator"] = host_allocator();
  return j;
}

}  // namespace lopa
