#include "experiments/train/trainer.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "experiments/eval/adapter_generation.h"
#include "experiments/eval/batching.h"
#include "experiments/eval/cloze.h"
#include "experiments/train/checkpoint.h"
#include "experiments/eval/encoder_cache.h"
#include "experiments/eval/evaluate.h"
#include "experiments/eval/evaluate_generation.h"
#include "experiments/scoring/scorer.h"
#include "experiments/eval/method_factory.h"
#include "experiments/eval/prompt_method.h"
#include "experiments/train/schedule.h"
#include "experiments/tasks/holdout.h"
#include "experiments/tasks/train_config.h"
#include "experiments/train/train_step.h"
#include "lopa/method.h"
#include "results/run_log.h"
#include "runtime/base/build_info.h"
#include "runtime/model/autocast.h"
#include "runtime/distributed/data_parallel.h"
#include "runtime/io/dtype.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"
#include "runtime/distributed/failure.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/encoder.h"
#include "runtime/distributed/process_group.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_stop_requested = 0;
extern "C" void on_checkpoint_signal(int) { g_stop_requested = 1; }

// Everything a run needs besides the optimizer: model, tokenizers, data, encoder embeddings, method.
struct Setup {
  TrainConfig cfg;
  ProcessGroup pg;
  std::unique_ptr<CausalLM> fm, encoder_model;
  std::unique_ptr<Tokenizer> tok, encoder_tok;
  int64_t pad_id = 0;
  std::vector<Example> train_examples, eval_examples;
  std::vector<TrainItem> train_items, eval_items;
  at::Tensor eval_emb;  // N×H encoder embeddings of the eval items (made at the first evaluation; eval_embeddings)
  // The encoder that embeds instances for LoPA / IDPG (the FM itself without --encoder) and its pad id;
  // training embeds lazily through an EncoderCache.
  const CausalLM* encoder = nullptr;
  int64_t encoder_pad = 0;
  bool train_encoder = false;  // train-encoder = true: encoder_model is trained, nothing is cached
  std::unique_ptr<Method> method;
  bool cloze = false;  // GLUE on a masked-LM FM: cloze items, loss and scoring (eval/cloze.h)
  std::string eval_split;  // the first evaluated split: it selects the kept adapter (eval_* above)
  // The other splits evaluated at each evaluation (eval-split's later entries), logged beside it.
  struct EvalSet {
    std::string split;
    std::vector<Example> examples;
    std::vector<TrainItem> items;
    at::Tensor emb;
  };
  std::vector<EvalSet> extra_evals;
};

std::vector<Example> load_examples(const TrainConfig& c, const std::string& split, int64_t limit) {
  LoadOptions lo;
  lo.skip_bad_rows = c.skip_bad_rows;
  LOPA_CHECK(!c.data_dir.empty() || !task_info(c.task).needs_data(), "--data-dir: required for task ", c.task);
  Dataset d = load_task_split(c.task, c.data_dir, split, lo, HoldoutRule{c.holdout, c.holdout_max});
  auto ex = std::move(d.examples);
  if (limit > 0 && static_cast<int64_t>(ex.size()) > limit) ex.resize(limit);
  LOPA_CHECK(!ex.empty(), c.task, " ", split, ": no examples");
  return ex;
}

bool uses_encoder(const std::string& method) { return method == "lopa" || method == "idpg"; }

// Items of the run's task: cloze items when the FM is a masked LM, make_items' otherwise.
std::vector<TrainItem> task_items(const Setup& s, const std::vector<Example>& ex, const TemplateConfig& tmpl,
                                  const Tokenizer* enc_tok) {
  const auto& c = s.cfg;
  return s.cloze ? make_cloze_items(c.task, ex, tmpl, *s.tok, enc_tok, c.max_length, c.encoder_max_length)
                 : make_items(c.task, ex, tmpl, *s.tok, enc_tok, c.max_length, c.encoder_max_length);
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Loads model, data and encoder embeddings, then creates the method with the run's seed.
Setup prepare(const TrainConfig& c, const std::string& eval_split_override, bool need_train) {
  Setup s;
  s.cfg = c;
  s.pg = ProcessGroup::init(static_cast<int>(c.tp), c.device);
  const auto dtype = parse_dtype(c.dtype, "--dtype");
  s.tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(c.model));
  s.fm = std::make_unique<CausalLM>(CausalLM::load(c.model, s.pg, dtype));
  s.pad_id = s.tok->pad_id().value_or(s.tok->eos_id().value_or(0));
  check_fm_role(*s.fm, c.model, c.task, c.prompt_template);
  s.cloze = is_masked_lm(*s.fm);
  const CausalLM* enc = s.fm.get();
  const Tokenizer* enc_tok = nullptr;
  if (uses_encoder(c.method) && !c.encoder.empty()) {
    s.encoder_model = std::make_unique<CausalLM>(CausalLM::load(c.encoder, s.pg, dtype));
    s.encoder_tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(c.encoder));
    enc = s.encoder_model.get();
    enc_tok = s.encoder_tok.get();
    s.train_encoder = c.train_encoder && need_train;
    if (s.train_encoder) s.encoder_model->set_trainable(true);
  }
  const TemplateConfig tmpl{unescape_template(c.prompt_template), unescape_template(c.target_template), c.verbalizers};
  const auto splits = eval_split_override.empty() ? training_eval_splits(c.task, c.eval_split, HoldoutRule{c.holdout, c.holdout_max})
                                                 : std::vector<std::string>{eval_split_override};
  s.eval_split = splits.at(0);
  if (need_train) {
    s.train_examples = load_examples(c, "train", c.max_train_examples);
    s.train_items = task_items(s, s.train_examples, tmpl, enc_tok);
  }
  s.eval_examples = load_examples(c, s.eval_split, c.max_eval_examples);
  s.eval_items = task_items(s, s.eval_examples, tmpl, enc_tok);
  const int64_t enc_pad = enc_tok ? enc_tok->pad_id().value_or(enc_tok->eos_id().value_or(0)) : s.pad_id;
  if (uses_encoder(c.method)) {
    // The encoder is frozen: each instance is embedded once, on first use, and cached (train instances by
    // the training loop, the evaluated splits at the first evaluation: eval_embeddings).
    s.encoder = enc;
    s.encoder_pad = enc_pad;
  }
  for (size_t i = 1; i < splits.size(); ++i) {
    Setup::EvalSet e;
    e.split = splits[i];
    e.examples = load_examples(c, e.split, c.max_eval_examples);
    e.items = task_items(s, e.examples, tmpl, enc_tok);
    s.extra_evals.push_back(std::move(e));
  }
  // Same seed on every rank: identical initial trainable parameters.
  seed_everything(static_cast<uint64_t>(c.seed));
  s.method = make_method(c, *s.fm, *s.tok, enc->hidden_size());
  s.method->attach(*s.fm);
  return s;
}

// The evaluated splits' instance embeddings, made at the first evaluation that needs them (not before step
// 1) and kept; a trained encoder changes them, so then they are made again at every evaluation.
void eval_embeddings(Setup& s) {
  if (!s.encoder) return;
  const auto& c = s.cfg;
  auto embed = [&](at::Tensor& emb, const std::vector<TrainItem>& items) {
    if (emb.defined() && !s.train_encoder) return;
    emb = encode_instances(*s.encoder, items, iota(items.size()), c.encoder_pooling, c.eval_batch_size, s.encoder_pad);
  };
  embed(s.eval_emb, s.eval_items);
  for (auto& e : s.extra_evals) embed(e.emb, e.items);
}

// The eval split scored with the run's method: label log-likelihoods (GLUE, in-domain tasks) or
// generation and sandboxed execution (MBPP, CruxEval).
EvalResult evaluate_run(Setup& s, std::vector<SampleOutcome>* outcomes = nullptr) {
  const auto& c = s.cfg;
  if (is_generation_task(c.task))
    return evaluate_generation(c.task, s.eval_examples, s.eval_items, *s.method, *s.fm, s.eval_emb, *s.tok,
                               c.eval_batch_size, s.pad_id, c.max_new_tokens, outcomes);
  if (s.cloze)
    return evaluate_cloze(c.task, s.eval_examples, s.eval_items, *s.method, *s.fm, s.eval_emb, c.eval_batch_size, s.pad_id);
  return evaluate_items(c.task, s.eval_examples, s.eval_items, *s.method, *s.fm, s.eval_emb, c.eval_batch_size, s.pad_id);
}

// One of the other evaluated splits, scored the same way.
EvalResult evaluate_set(Setup& s, Setup::EvalSet& e) {
  const auto& c = s.cfg;
  if (is_generation_task(c.task))
    return evaluate_generation(c.task, e.examples, e.items, *s.method, *s.fm, e.emb, *s.tok, c.eval_batch_size,
                               s.pad_id, c.max_new_tokens, nullptr);
  if (s.cloze) return evaluate_cloze(c.task, e.examples, e.items, *s.method, *s.fm, e.emb, c.eval_batch_size, s.pad_id);
  return evaluate_items(c.task, e.examples, e.items, *s.method, *s.fm, e.emb, c.eval_batch_size, s.pad_id);
}

// save-initial: RUN_DIR/initial/ gets the trainable parameters before the first step (the method's
// adapter layout) and items.jsonl, each training item's token ids (prompt, gold target, encoder input);
// the returned stream (rank 0 only) then receives batches.jsonl, each step's item indices. Reference
// trainers replay a run from them (bench/official_ref.py).
std::unique_ptr<std::ofstream> save_initial(Setup& s, const std::string& run_dir) {
  const auto dir = run_dir + "/initial";
  if (s.method->collective_save() ? s.pg.dp_rank == 0 : s.pg.is_root()) s.method->save(dir);
  s.pg.world->barrier();
  if (!s.pg.is_root()) return nullptr;
  std::ofstream items(dir + "/items.jsonl");
  for (const auto& it : s.train_items)
    items << nlohmann::json{{"id", it.id}, {"prompt", it.prompt}, {"target", it.targets.at(it.gold)},
                            {"encoder_input", it.encoder_input}}.dump()
          << "\n";
  LOPA_CHECK(items.good(), dir, "/items.jsonl: cannot write");
  auto batches = std::make_unique<std::ofstream>(dir + "/batches.jsonl");
  LOPA_CHECK(batches->good(), dir, "/batches.jsonl: cannot write");
  return batches;
}

// The metric the best checkpoint is chosen by: accuracy, pass@1, else the negated dev loss.
double selection_metric(const std::map<std::string, double>& m) {
  for (const char* k : {"accuracy", "pass_at_1"})
    if (m.count(k)) return m.at(k);
  return m.count("loss") ? -m.at("loss") : 0.0;
}

// Saves adapter/ (and predictions.jsonl) from the right ranks.
void save_adapter(Setup& s, const std::string& run_dir, const EvalResult* eval) {
  const auto dir = run_dir + "/adapter";
  if (s.method->collective_save() ? s.pg.dp_rank == 0 : s.pg.is_root()) s.method->save(dir);
  if (s.train_encoder) {
    // The trained encoder as an HF checkpoint with its tokenizer files: lopa eval, lopa serve and
    // lopa prompt read it instead of encoder = DIR (run_encoder_dir).
    if (s.pg.dp_rank == 0) s.encoder_model->save_pretrained(dir + "/encoder");
  }
  if (s.pg.is_root() && eval) write_predictions(run_dir + "/predictions.jsonl", s.cfg.task, eval->predictions);
  s.pg.world->barrier();
}

std::string device_name(const ProcessGroup& pg) { return pg.device.str(); }

}  // namespace

void install_checkpoint_signal() { std::signal(SIGUSR1, on_checkpoint_signal); }

int run_training(const std::map<std::string, std::string>& kv, const std::string& run_dir) {
  const auto cfg = TrainConfig::from_map(kv);
  const auto ini = TrainConfig::to_ini(kv);
  auto s = prepare(cfg, "", true);
  auto& pg = s.pg;
  check_same_config(pg, ini);
  const auto ckpt_dir = run_dir + "/checkpoint";
  const bool resume = checkpoint_exists(ckpt_dir);
  if (pg.is_root()) {
    fs::create_directories(run_dir);
    if (resume && fs::exists(run_dir + "/config.ini")) {
      const auto why = TrainConfig::resume_difference(TrainConfig::read_ini(run_dir + "/config.ini"), kv);
      LOPA_CHECK(why.empty(), run_dir, "/config.ini: differs from this run's configuration (", why,
                 "); resume needs the same keys");
    } else {
      write_file_atomic(run_dir + "/config.ini", ini);
    }
  }
  pg.world->barrier();

  auto& method = *s.method;
  auto& fm = *s.fm;
  auto named = method.parameters();
  std::vector<at::Tensor> params;
  for (auto& [n, p] : named) params.push_back(p);
  // train-encoder: the encoder's weights are a second parameter group (its own learning rate), in the
  // checkpoint and the gradient norm under the names "encoder.<HF name>".
  std::vector<at::Tensor> encoder_params;
  std::set<std::string> sharded;
  if (s.train_encoder)
    for (auto& p : s.encoder_model->named_parameters()) {
      named.emplace_back("encoder." + p.name, p.tensor);
      encoder_params.push_back(p.tensor);
      if (pg.tp_size > 1 && p.shard.split != Split::Replicated) sharded.insert("encoder." + p.name);
    }
  std::vector<at::Tensor> all_params = params;
  all_params.insert(all_params.end(), encoder_params.begin(), encoder_params.end());
  DataParallel dp(pg.dp, all_params);
  if (pg.dp_size > 1) dp.broadcast_parameters(0);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(params, std::make_unique<torch::optim::AdamWOptions>(
                                  torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay)));
  if (!encoder_params.empty())
    groups.emplace_back(encoder_params, std::make_unique<torch::optim::AdamWOptions>(
                                            torch::optim::AdamWOptions(cfg.encoder_lr).weight_decay(cfg.weight_decay)));
  torch::optim::AdamW opt(std::move(groups), torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
  const auto is_sharded = [&method, &sharded](const std::string& n) {
    return sharded.count(n) > 0 || method.is_tp_sharded(n);
  };

  const int64_t N = s.train_items.size();
  LOPA_CHECK(N >= cfg.batch_size, cfg.task, " train: ", N, " examples, fewer than --batch-size ", cfg.batch_size);
  LOPA_CHECK(cfg.batch_size / cfg.grad_accum >= pg.dp_size, "--batch-size ", cfg.batch_size, " / --grad-accum ",
             cfg.grad_accum, " is smaller than the ", pg.dp_size, " data-parallel ranks");
  const int64_t steps_per_epoch = N / cfg.batch_size;  // the last partial batch of an epoch is dropped
  const int64_t total = cfg.max_steps > 0 ? cfg.max_steps : cfg.epochs * steps_per_epoch;

  // Dropout streams: shared by the ranks of one tp group (replicated activations), distinct across dp.
  seed_everything(rank_seed(static_cast<uint64_t>(cfg.seed) + 1, pg.dp_rank));
  TrainState state;
  if (resume) state = load_checkpoint(ckpt_dir, pg, named, opt);

  std::unique_ptr<results::RunLog> log;
  if (pg.is_root()) {
    const auto path = run_dir + "/metrics.h5";
    if (resume && fs::exists(path)) {
      log = std::make_unique<results::RunLog>(results::RunLog::open_append(path));
      // The log is flushed before every checkpoint, so it may hold steps past the one resumed from:
      // those are replayed now and logged again, once.
      log->truncate_after(state.step);
    } else {
      results::RunInfo info;
      info.method = cfg.method;
      info.task = cfg.task;
      info.model = cfg.model;
      info.device = device_name(pg);
      info.git_sha = build_git_sha();
      nlohmann::json j;
      for (const auto& k : train_config_keys()) {
        auto it = kv.find(k.name);
        j[k.name] = it != kv.end() ? it->second : std::string(k.default_value);
      }
      info.config_json = j.dump();
      info.seed = cfg.seed;
      info.world_size = pg.world_size;
      info.tp = pg.tp_size;
      info.dp = pg.dp_size;
      info.trainable_params = method.num_trainable_parameters();
      info.eval_split = s.eval_split;
      info.total_params = fm.num_parameters() + (cfg.method == "fft" ? 0 : method.num_trainable_parameters());
      log = std::make_unique<results::RunLog>(results::RunLog::create(path, info));
    }
    log->set_attr("server_side_adapter", std::string(method.server_side_adapter() ? "yes" : "no"));
  }
  // mpirun and srun send SIGTERM to the ranks that survive a dead one (or to all, when the job is
  // cancelled), then SIGKILL: rank 0 records why the run ended before it goes.
  std::unique_ptr<TerminationWatch> watch;
  if (log)
    watch = std::make_unique<TerminationWatch>([&log, &state, &pg](int sig) {
      log->set_status_failed(str("terminated by signal ", sig, " (", strsignal(sig), ") during step ", state.step + 1,
                                 pg.world_size > 1 ? ": another rank died, or the job was cancelled" : ""));
    });
  if (pg.is_root())
    std::cerr << "lopa train: " << cfg.method << " on " << cfg.task << ", " << method.num_trainable_parameters()
              << " trainable parameters, " << total << " steps (" << steps_per_epoch << " per epoch), "
              << pg.describe() << (resume ? str(", resuming at step ", state.step) : std::string()) << std::endl;
  if (method.needs_encoder()) {
    // Which encoder embedded the instances and how: the family's pooling unless encoder-pooling names one.
    const Pooling rule = resolve_pooling(s.encoder->architecture(), parse_pooling(cfg.encoder_pooling, "encoder-pooling"));
    if (pg.is_root())
      std::cerr << "lopa train: encoder " << (cfg.encoder.empty() ? cfg.model : cfg.encoder) << " ("
                << s.encoder->config().model_type << ", pooling " << pooling_name(rule) << ", "
                << (s.train_encoder ? str("trained at encoder-lr ", cfg.encoder_lr, ", ", s.encoder->num_parameters(),
                                          " parameters")
                                    : std::string("frozen"))
                << ")" << std::endl;
    if (log) {
      log->set_attr("encoder_pooling", std::string(pooling_name(rule)));
      log->set_attr("encoder_trainable", int64_t(s.train_encoder ? 1 : 0));
      if (s.train_encoder) {
        log->set_attr("encoder_lr", cfg.encoder_lr);
        log->set_attr("encoder_params", s.encoder->num_parameters());
      }
    }
  }

  const at::ScalarType amp = parse_autocast(cfg.autocast, fm.device(), "--autocast");
  auto evaluate_and_track = [&](int64_t step) {
    eval_embeddings(s);  // outside autocast, as the training steps embed
    AutocastGuard amp_guard(fm.device(), amp);
    auto res = evaluate_run(s);
    if (log) log->log_eval(step, res.metrics);
    for (auto& e : s.extra_evals) {
      const auto other = evaluate_set(s, e);
      if (log) log->log_eval(e.split, step, other.metrics);
      if (pg.is_root()) {
        std::cerr << "lopa train: step " << step << " eval " << e.split;
        for (const auto& [k, v] : other.metrics) std::cerr << " " << k << "=" << v;
        std::cerr << std::endl;
      }
    }
    const double metric = selection_metric(res.metrics);
    if (pg.is_root()) {
      std::cerr << "lopa train: step " << step << " eval";
      for (const auto& [k, v] : res.metrics) std::cerr << " " << k << "=" << v;
      std::cerr << std::endl;
    }
    if (state.best_step < 0 || metric > state.best_metric) {
      state.best_metric = metric;
      state.best_step = step;
      save_adapter(s, run_dir, &res);
      if (log) {
        log->set_attr("best_step", step);
        log->set_attr("best_metric", metric);
      }
    }
  };

  std::unique_ptr<std::ofstream> batch_record;
  if (cfg.save_initial && !resume) batch_record = save_initial(s, run_dir);
  // The run log is published (durably) before each checkpoint, so that it always covers the steps a
  // resumed run skips: a kill between two flushes loses no row.
  auto checkpoint = [&] {
    if (log) log->flush();
    save_checkpoint(ckpt_dir, pg, named, opt, state);
  };

  std::unique_ptr<EncoderCache> train_emb;
  if (method.needs_encoder() && !s.train_encoder) {
    const CausalLM& enc = *s.encoder;
    train_emb = std::make_unique<EncoderCache>(
        static_cast<int64_t>(s.train_items.size()), enc.hidden_size(), enc.dtype(), enc.device(),
        [&s, &enc](const std::vector<int64_t>& idx) {
          return encode_instances(enc, s.train_items, idx, s.cfg.encoder_pooling, s.cfg.eval_batch_size, s.encoder_pad);
        },
        cfg.eval_batch_size);
  }

  try {
    method.set_training(true);
    std::vector<int64_t> order;
    int64_t order_epoch = -1;
    const auto t0 = std::chrono::steady_clock::now();
    bool stopped = false;
    for (int64_t step = state.step; step < total; ++step) {
      const auto ts = std::chrono::steady_clock::now();
      const int64_t epoch = step / steps_per_epoch, in_epoch = step % steps_per_epoch;
      if (epoch != order_epoch) order = epoch_order(N, static_cast<uint64_t>(cfg.seed), epoch), order_epoch = epoch;
      std::vector<int64_t> global(order.begin() + in_epoch * cfg.batch_size,
                                  order.begin() + (in_epoch + 1) * cfg.batch_size);
      if (batch_record) *batch_record << nlohmann::json{{"step", step}, {"items", global}}.dump() << std::endl;
      // Target tokens of the whole global batch: every rank's loss is scaled by it, so the averaged
      // gradient is that of the global per-token mean, whatever the split over ranks and micro-batches.
      int64_t global_tokens = 0;
      for (auto i : global) global_tokens += s.train_items[i].targets[s.train_items[i].gold].size();
      auto shard = batch_shard(cfg.batch_size, pg.dp_rank, pg.dp_size);
      std::vector<int64_t> mine(global.begin() + shard.begin, global.begin() + shard.end);

      const double factor = schedule_factor(cfg.schedule, step, cfg.warmup_steps, total);
      const double lr = cfg.lr * factor;
      for (size_t g = 0; g < opt.param_groups().size(); ++g)
        static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[g].options()).lr(g == 0 ? lr : cfg.encoder_lr * factor);
      opt.zero_grad();
      double loss_sum = 0;
      const int64_t micro = cfg.grad_accum;
      for (int64_t a = 0; a < micro; ++a) {
        const int64_t b0 = mine.size() * a / micro, b1 = mine.size() * (a + 1) / micro;
        if (b1 <= b0) continue;
        std::vector<int64_t> idx(mine.begin() + b0, mine.begin() + b1);
        auto batch = s.cloze ? cloze_batch(s.train_items, idx, s.pad_id) : training_batch(s.train_items, idx, s.pad_id);
        at::Tensor e;
        if (method.needs_encoder())
          e = s.train_encoder ? encode_instances(*s.encoder, s.train_items, idx, cfg.encoder_pooling,
                                                 static_cast<int64_t>(idx.size()), s.encoder_pad, /*with_grad=*/true)
                              : train_emb->rows(idx);
        const double w = static_cast<double>(batch.num_target_tokens) / static_cast<double>(global_tokens);
        loss_sum += (s.cloze ? cloze_micro_batch_backward(method, fm, batch, e, w * pg.dp_size, amp)
                             : micro_batch_backward(method, fm, batch, e, w * pg.dp_size, amp)) * w;
      }
      if (pg.dp_size > 1) dp.average_gradients();
      const double grad_norm = clip_gradients(named, is_sharded, pg, cfg.max_grad_norm);
      if (pg.dp_size > 1) {
        auto t = at::tensor({loss_sum}, at::kDouble);
        pg.dp->all_reduce(t, ReduceOp::Sum);
        loss_sum = t.item<double>();
      }
      // A non-finite loss or gradient norm ends the run here, before the optimizer step would spread it
      // into every weight (a diverged run used to log `loss nan` at every step and end `completed`).
      std::string non_finite;
      if (!std::isfinite(loss_sum) || !std::isfinite(grad_norm))
        non_finite = str("step ", step + 1, ": ", std::isfinite(loss_sum) ? "gradient norm" : "loss", " is ",
                         std::isfinite(loss_sum) ? grad_norm : loss_sum,
                         " (not finite); training stopped before the optimizer step (try a lower --lr or a "
                         "--max-grad-norm; lopa info --check-weights checks the model)");
      agree_on_failure(pg, non_finite, str("step ", step + 1, ": a non-finite loss or gradient norm"));
      opt.step();
      state.step = step + 1;
      state.epoch = state.step / steps_per_epoch;
      state.batch_in_epoch = state.step % steps_per_epoch;
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (log) log->log_train(state.step, loss_sum, lr, grad_norm, static_cast<double>(global_tokens) / dt, elapsed);

      if (cfg.eval_every > 0 && state.step % cfg.eval_every == 0 && state.step < total) evaluate_and_track(state.step);
      if (cfg.save_every > 0 && state.step % cfg.save_every == 0 && state.step < total) checkpoint();
      // SIGUSR1 on any rank stops every rank after the same step.
      auto flag = at::tensor({static_cast<double>(g_stop_requested)}, at::kDouble);
      pg.world->all_reduce(flag, ReduceOp::Max);
      if (flag.item<double>() > 0 && state.step < total) {
        checkpoint();
        if (log) log->set_status_interrupted(str("stopped by SIGUSR1 at step ", state.step, " after a checkpoint; rerun to resume"));
        if (pg.is_root()) std::cerr << "lopa train: checkpointed at step " << state.step << " on SIGUSR1" << std::endl;
        stopped = true;
        break;
      }
    }
    if (stopped) return kTrainExitCheckpointed;
    // A run restarted after completion does nothing but report.
    if (!resume || state.step > read_checkpoint_state(ckpt_dir).step || !fs::exists(run_dir + "/adapter")) {
      evaluate_and_track(state.step);
      checkpoint();
    }
    if (log) {
      log->set_attr("final_step", state.step);
      log->set_status_completed();
    }
  } catch (const std::exception& e) {
    // The run log says why the run ended (a full disk, a non-finite loss, a dead peer's collective).
    if (log) {
      try {
        log->set_status_failed(e.what());
      } catch (const std::exception& le) {
        std::cerr << "lopa train: warning: the run log cannot record the failure: " << le.what() << std::endl;
      }
    }
    // An error all ranks raised together: rank 0 has recorded it before any rank ends the job.
    if (dynamic_cast<const AgreedError*>(&e)) pg.world->barrier();
    throw;
  }
  return 0;
}

int run_evaluation(const std::string& run_dir, const std::string& split, const std::string& device,
                   const std::string& details_path) {
  auto kv = TrainConfig::read_ini(run_dir + "/config.ini");
  if (!device.empty()) kv["device"] = device;
  auto cfg = TrainConfig::from_map(kv);
  cfg.encoder = run_encoder_dir(run_dir, cfg);
  cfg.train_encoder = false;
  // Default: the split the task reports (dev for GLUE and the generated tasks, test for code tasks).
  auto s = prepare(cfg, split.empty() ? task_info(cfg.task).eval_split : split, false);
  s.method->load(run_dir + "/adapter");
  eval_embeddings(s);  // outside autocast, as training embedded
  AutocastGuard amp(s.fm->device(), parse_autocast(cfg.autocast, s.fm->device(), "--autocast"));
  LOPA_CHECK(details_path.empty() || is_generation_task(cfg.task),
             "lopa eval: --details is for the code tasks (mbpp, cruxeval-i, cruxeval-o)");
  std::vector<SampleOutcome> outcomes;
  auto res = evaluate_run(s, details_path.empty() ? nullptr : &outcomes);
  if (s.pg.is_root()) {
    write_predictions(run_dir + "/predictions.jsonl", cfg.task, res.predictions);
    if (!details_path.empty()) write_score_details(details_path, outcomes);
    int64_t step = 0;
    if (checkpoint_exists(run_dir + "/checkpoint")) step = read_checkpoint_state(run_dir + "/checkpoint").best_step;
    const auto& named = res.metrics;  // recorded under /eval/<split>/ (schema 2)
    if (fs::exists(run_dir + "/metrics.h5")) {
      auto log = results::RunLog::open_append(run_dir + "/metrics.h5");
      log.log_eval(s.eval_split, step, named);
      log.set_status_completed();
    }
    nlohmann::json j(named);
    j["split"] = s.eval_split;
    j["examples"] = static_cast<int64_t>(s.eval_items.size());
    std::cout << j.dump() << std::endl;
  }
  return 0;
}

}  // namespace lopa
