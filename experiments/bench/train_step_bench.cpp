#include "experiments/bench/train_step_bench.h"

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "experiments/eval/batching.h"
#include "experiments/bench/bench_probe.h"
#include "experiments/eval/method_factory.h"
#include "experiments/bench/model_costs.h"
#include "experiments/eval/prompt_method.h"
#include "experiments/tasks/train_config.h"
#include "experiments/train/train_step.h"
#include "lopa/method.h"
#include "runtime/base/blas_info.h"
#include "runtime/base/host_allocator.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/dtype.h"
#include "runtime/base/error.h"
#include "runtime/model/causal_lm.h"
#include "runtime/distributed/process_group.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double reduce(const ProcessGroup& pg, double v, ReduceOp op) {
  auto t = at::tensor({v}, at::kDouble);
  pg.world->all_reduce(t, op);
  return t.item<double>();
}

// B rows of seq_len − prompt_len token ids (ids ≥ 3: no special tokens), the last `targets` the label.
std::vector<TrainItem> synthetic_items(int64_t B, int64_t len, int64_t targets, int64_t vocab, int64_t seed) {
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  auto ids = at::randint(3, vocab, {B, len}, gen, at::kLong);
  std::vector<TrainItem> items(B);
  for (int64_t b = 0; b < B; ++b) {
    auto row = ids[b];
    std::vector<int64_t> v(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + len);
    items[b].id = std::to_string(b);
    items[b].prompt.assign(v.begin(), v.end() - targets);
    items[b].targets = {std::vector<int64_t>(v.end() - targets, v.end())};
    items[b].target_labels = {"t"};
    items[b].gold = 0;
    items[b].encoder_input = items[b].prompt;
  }
  return items;
}

std::vector<std::string> checkpoint_files(const std::string& dir) {
  const auto ck = Checkpoint::open(dir);
  std::set<std::string> files;
  for (const auto& n : ck.names()) files.insert(ck.file_of(n));
  return {files.begin(), files.end()};
}
}  // namespace

nlohmann::ordered_json run_train_bench(const TrainBenchOptions& o, const ProcessGroup& pg) {
  LOPA_CHECK(pg.dp_size == 1, "lopa bench train: run tp ranks only (world ", pg.world_size, " = tp ", pg.tp_size,
             " x dp ", pg.dp_size, ")");
  LOPA_CHECK(o.steps >= 1 && o.warmup >= 0 && o.batch_size >= 1 && o.target_tokens >= 1,
             "lopa bench train: --steps, --batch-size and --target-tokens must be positive");
  const auto dtype = parse_dtype(o.dtype, "--dtype");
  const int threads = ensure_threads();
  const int64_t rss_base = current_rss_bytes();

  // Load cost: one sequential read of the weight files, then the real load (same page cache state).
  int64_t file_bytes = 0;
  const double read_s = read_files_seconds(checkpoint_files(o.model), &file_bytes);
  pg.world->barrier();
  double t0 = now();
  CausalLM fm = CausalLM::load(o.model, pg, dtype);
  const double load_s = reduce(pg, now() - t0, ReduceOp::Max);
  const auto tok = Tokenizer::from_dir(o.tokenizer.empty() ? o.model : o.tokenizer);
  const int64_t pad_id = tok.pad_id().value_or(tok.eos_id().value_or(0));

  std::map<std::string, std::string> kv;
  kv["model"] = o.model;
  kv["task"] = "bench";
  kv["method"] = o.method;
  kv["num-virtual-tokens"] = std::to_string(o.num_virtual_tokens);
  kv["rank"] = std::to_string(o.rank);
  kv["lora-targets"] = o.lora_targets;
  kv["batch-size"] = std::to_string(o.batch_size);
  kv["seed"] = std::to_string(o.seed);
  kv["dtype"] = o.dtype;
  kv["tp"] = std::to_string(pg.tp_size);
  kv["max-steps"] = std::to_string(o.steps + o.warmup);
  const auto cfg = TrainConfig::from_map(kv);
  seed_everything(static_cast<uint64_t>(o.seed));
  auto method = make_method(cfg, fm, tok, fm.hidden_size());
  method->attach(fm);

  const int64_t P = method->prompt_length(), data_len = o.seq_len - P;
  LOPA_CHECK(data_len > o.target_tokens, "lopa bench train: --seq-len ", o.seq_len, " leaves no prompt tokens after ",
             P, " soft-prompt positions and ", o.target_tokens, " targets");
  const auto items = synthetic_items(o.batch_size, data_len, o.target_tokens, fm.vocab_size(), o.seed);
  std::vector<int64_t> idx(o.batch_size);
  for (int64_t i = 0; i < o.batch_size; ++i) idx[i] = i;

  // The frozen encoder's embeddings, once per instance (the trainer's cache): timed separately.
  at::Tensor emb;
  double encode_s = 0;
  if (method->needs_encoder()) {
    t0 = now();
    emb = encode_instances(fm, items, idx, cfg.encoder_pooling, o.batch_size, pad_id);
    encode_s = reduce(pg, now() - t0, ReduceOp::Max);
  }

  auto named = method->parameters();
  std::vector<at::Tensor> params;
  int64_t trainable_local = 0;
  for (auto& [n, p] : named) params.push_back(p), trainable_local += p.numel();
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
  method->set_training(true);

  std::vector<double> times;
  double loss = 0;
  // LOPA_BENCH_PROFILE=FILE: the last step's ops as a chrome trace (where the time goes; not timed).
  const char* profile = std::getenv("LOPA_BENCH_PROFILE");
  for (int64_t s = 0; s < o.warmup + o.steps + (profile ? 1 : 0); ++s) {
    std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
    if (profile && s == o.warmup + o.steps) prof = std::make_unique<torch::autograd::profiler::RecordProfile>(profile);
    pg.world->barrier();
    const double ts = now();
    opt.zero_grad();
    const auto batch = training_batch(items, idx, pad_id);
    loss = micro_batch_backward(*method, fm, batch, emb, 1.0);
    clip_gradients(named, *method, pg, cfg.max_grad_norm);
    opt.step();
    sync_device(fm.device());
    const double dt = reduce(pg, now() - ts, ReduceOp::Max);  // the slowest rank sets the pace
    if (s >= o.warmup && !prof) times.push_back(dt);
  }
  // Frozen FM weights must never get a gradient formed (only fft trains them).
  int64_t fm_grads = 0;
  for (const auto& p : fm.named_parameters()) fm_grads += p.tensor.grad().defined() ? 1 : 0;
  const int64_t rss_peak = peak_rss_bytes();
  const double rss_peak_max = reduce(pg, static_cast<double>(rss_peak), ReduceOp::Max);

  // The matmul peak, every rank at once (as during the step), summed over ranks.
  const auto& c = fm.config();
  std::set<int64_t> sizes;
  for (int64_t n : {c.hidden_size, c.intermediate_size / pg.tp_size, int64_t(1024)})
    sizes.insert(std::clamp<int64_t>((n + 63) / 64 * 64, 256, 2048));
  // A GPU reaches its peak only on large products (an H100's bf16 2048³ runs well below it): the
  // card's peak is the 8192³ product.
  if (fm.device().is_cuda()) sizes.insert(8192);
  pg.world->barrier();
  const double peak_rank = matmul_peak_gflops(dtype, {sizes.begin(), sizes.end()}, 5, fm.device());
  const double peak = reduce(pg, peak_rank, ReduceOp::Sum);

  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2], best = sorted.front();
  const double tokens = static_cast<double>(o.batch_size * o.seq_len);
  const bool fft = o.method == "fft";
  const double fpt = train_flops_per_token(fm.architecture(), o.seq_len, o.target_tokens, fft);
  const double tps = tokens / median, achieved = fpt * tps / 1e9;

  // RSS budget on this rank: weights + activations + trainable state (param, grad, 2 Adam moments).
  int64_t weight_bytes = 0;
  for (const auto& p : fm.named_parameters()) weight_bytes += p.tensor.numel() * p.tensor.element_size();
  const int64_t elem = c10::elementSize(dtype);
  const int64_t act_bytes = train_activation_bytes(fm.architecture(), o.batch_size, o.seq_len, pg.tp_size, elem);
  const int64_t opt_bytes = fft ? 3 * weight_bytes : 16 * trainable_local;
  const int64_t budget = weight_bytes + act_bytes + opt_bytes;

  nlohmann::ordered_json j;
  j["tokens_per_s"] = tps;
  j["step_ms"] = median * 1e3;
  j["model_flops_per_token"] = fpt;
  j["achieved_gflops"] = achieved;
  j["peak_gflops"] = peak;
  j["mfu"] = achieved / peak;
  j["peak_rss_bytes"] = rss_peak;          // rank 0's (each rank reports its own)
  j["peak_rss_bytes_max"] = static_cast<int64_t>(rss_peak_max);  // over ranks
  j["flops_convention"] = flops_convention();
  j["method"] = o.method;
  j["model"] = o.model;
  j["parameters"] = fm.num_parameters();
  j["trainable_parameters"] = method->num_trainable_parameters();
  j["dtype"] = o.dtype;
  j["batch_size"] = o.batch_size;
  j["seq_len"] = o.seq_len;
  j["prompt_positions"] = P;
  j["target_tokens"] = o.target_tokens;
  j["steps"] = o.steps;
  j["step_ms_best"] = best * 1e3;
  j["step_ms_all"] = times;
  for (auto& t : j["step_ms_all"]) t = t.get<double>() * 1e3;
  j["loss"] = loss;
  j["fm_tensors_with_grad"] = fm_grads;
  j["tp"] = pg.tp_size;
  j["world_size"] = pg.world_size;
  j["threads"] = threads;
  j["blas"] = blas_description();
  j["allocator"] = host_allocator();
  j["peak_gflops_per_rank"] = peak_rank;
  j["encode_ms"] = encode_s * 1e3;  // LoPA/IDPG: embedding the batch's instances once (first epoch only)
  j["load_ms"] = load_s * 1e3;
  j["read_bytes_ms"] = read_s * 1e3;
  j["checkpoint_bytes"] = file_bytes;
  j["load_over_read"] = read_s > 0 ? load_s / read_s : 0.0;
  j["rss_process_base_bytes"] = rss_base;  // before loading anything (LibTorch, BLAS, MPI)
  j["rss_weights_bytes"] = weight_bytes;
  j["rss_activations_est_bytes"] = act_bytes;
  j["rss_optimizer_bytes"] = opt_bytes;
  j["rss_over_budget"] = static_cast<double>(rss_peak - rss_base) / static_cast<double>(budget);
  return j;
}

}  // namespace lopa
