#include "experiments/train/pretrain.h"

#include <torch/torch.h>  // torch::optim::AdamW

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "experiments/train/schedule.h"
#include "experiments/tasks/synthetic_task.h"
#include "experiments/tasks/word_tokenizer.h"
#include "runtime/distributed/data_parallel.h"
#include "runtime/io/atomic_file.h"
#include "runtime/base/error.h"
#include "runtime/model/init_model.h"
#include "runtime/model/causal_lm.h"
#include "runtime/distributed/process_group.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

namespace fs = std::filesystem;

namespace {

// Bumped whenever the corpus, the world, the lexicon (the tokenizer) or the training code changes
// what a configuration learns. v2: the lexicon lost the unused question words.
constexpr const char* kCorpusVersion = "synth-world-v2";

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

nlohmann::ordered_json config_json(const PretrainConfig& c) {
  return {{"corpus", kCorpusVersion}, {"hidden_size", c.hidden_size}, {"num_layers", c.num_layers},
          {"num_heads", c.num_heads}, {"num_kv_heads", c.num_kv_heads}, {"intermediate_size", c.intermediate_size},
          {"steps", c.steps}, {"batch_size", c.batch_size}, {"seq_len", c.seq_len}, {"warmup_steps", c.warmup_steps},
          {"lr", c.lr}, {"min_lr_ratio", c.min_lr_ratio}, {"weight_decay", c.weight_decay},
          {"max_grad_norm", c.max_grad_norm}, {"seed", c.seed}, {"data_seed", c.data_seed}};
}

// The packed token stream: documents, each BOS-prefixed, cut into rows of seq_len tokens. Row r of the
// stream is the same on every rank, so each dp rank takes its rows of the global batch.
class CorpusStream {
 public:
  CorpusStream(const Tokenizer& tok, uint64_t seed, int64_t seq_len) : tok_(tok), seed_(seed), len_(seq_len) {}
  at::Tensor rows(int64_t n) {
    auto out = at::empty({n, len_}, at::kLong);
    auto* p = out.data_ptr<int64_t>();
    for (int64_t i = 0; i < n * len_; ++i) {
      while (pos_ >= buf_.size()) {
        buf_ = tok_.encode(synth::corpus_document(synth_world(), seed_, doc_++), /*add_special_tokens=*/true);
        pos_ = 0;
      }
      p[i] = buf_[pos_++];
    }
    return out;
  }

 private:
  const Tokenizer& tok_;
  uint64_t seed_, doc_ = 0;
  int64_t len_;
  std::vector<int64_t> buf_;
  size_t pos_ = 0;
};

double mean_loss(const CausalLM& fm, const at::Tensor& ids) {
  at::NoGradGuard g;
  auto hidden = fm.forward(fm.embed(ids), at::Tensor());
  return fm.lm_loss(hidden, ids).item<double>();
}

// Each candidate must be one token: its id.
std::vector<int64_t> candidate_ids(const Tokenizer& tok, const std::vector<std::string>& words, const std::string& what) {
  std::vector<int64_t> ids;
  for (const auto& w : words) {
    auto t = tok.encode(w, false);
    LOPA_CHECK(t.size() == 1, what, ": candidate '", w, "' is not one token");
    ids.push_back(t[0]);
  }
  return ids;
}

// For prompts of one length (one batch, no padding), the index into `candidates` of the token the FM
// ranks highest at each prompt's last position.
std::vector<int64_t> last_position_choices(const CausalLM& fm, const std::vector<std::vector<int64_t>>& prompts,
                                           const std::vector<int64_t>& candidates, const std::string& what) {
  at::NoGradGuard g;
  std::vector<int64_t> flat;
  for (const auto& p : prompts) {
    LOPA_CHECK(p.size() == prompts[0].size(), what, ": prompts differ in length");
    flat.insert(flat.end(), p.begin(), p.end());
  }
  auto ids = at::tensor(flat, at::kLong).view({static_cast<int64_t>(prompts.size()), -1}).to(fm.device());
  auto hidden = fm.forward(fm.embed(ids), at::Tensor());
  auto logits = fm.lm_logits(hidden.select(1, -1)).to(at::kCPU).to(at::kFloat);
  auto pick = logits.index_select(1, at::tensor(candidates, at::kLong)).argmax(1).contiguous();
  return {pick.data_ptr<int64_t>(), pick.data_ptr<int64_t>() + pick.numel()};
}

double recall(const CausalLM& fm, const Tokenizer& tok) {
  const auto& w = synth_world();
  int64_t right = 0, total = 0;
  for (size_t r = 0; r < w.relations.size(); ++r) {
    const auto& rel = w.relations[r];
    std::vector<std::string> values;
    for (const auto& v : rel.values) values.push_back(" " + v);
    const auto& templ = rel.templates[0];
    const auto prefix = templ.substr(0, templ.find(" {v}"));
    std::vector<std::vector<int64_t>> prompts;
    for (size_t p = 0; p < w.people.size(); ++p) {
      auto text = prefix;
      text.replace(text.find("{n}"), 3, w.people[p]);
      prompts.push_back(tok.encode(text, true));
    }
    // Every name is one token, so the prompts of one relation have one length.
    const auto pick = last_position_choices(fm, prompts, candidate_ids(tok, values, "fact recall"), "fact recall");
    for (size_t p = 0; p < w.people.size(); ++p, ++total) right += pick[p] == w.facts[p][r];
  }
  return static_cast<double>(right) / static_cast<double>(total);
}

std::string fmt(double v, int prec = 3) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(prec) << v;
  return o.str();
}

PretrainResult read_record(const std::string& dir) {
  std::ifstream in(dir + "/pretrain.json");
  LOPA_CHECK(in, dir, "/pretrain.json: cannot read");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    fail(dir, "/pretrain.json: ", e.what());
  }
  PretrainResult r;
  r.dir = dir;
  r.reused = true;
  r.first_loss = j.value("first_loss", 0.0);
  r.final_loss = j.value("final_loss", 0.0);
  r.val_loss = j.value("val_loss", 0.0);
  r.fact_recall = j.value("fact_recall", 0.0);
  r.seconds = j.value("seconds", 0.0);
  r.parameters = j.value("parameters", int64_t(0));
  return r;
}

}  // namespace

std::string pretrain_hash(const PretrainConfig& c) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a(config_json(c).dump())));
  return std::string(buf, 12);
}

std::string lopa_cache_dir() {
  if (const char* d = std::getenv("LOPA_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/lopa";
  const char* home = std::getenv("HOME");
  LOPA_CHECK(home && *home, "no cache directory: set LOPA_CACHE_DIR (or HOME)");
  return std::string(home) + "/.cache/lopa";
}

std::string default_pretrain_dir(const PretrainConfig& c) { return lopa_cache_dir() + "/demo-fm-" + pretrain_hash(c); }

bool is_complete_pretrain(const std::string& dir) {
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "pretrain.json"})
    if (!fs::is_regular_file(fs::path(dir) / f)) return false;
  return true;
}

double fact_recall(const std::string& model_dir) {
  auto pg = ProcessGroup::single();
  auto fm = CausalLM::load(model_dir, pg);
  return recall(fm, Tokenizer::from_dir(model_dir));
}

double synth_facts_unadapted_accuracy(const std::string& model_dir, const std::string& split) {
  auto pg = ProcessGroup::single();
  auto fm = CausalLM::load(model_dir, pg);
  const auto tok = Tokenizer::from_dir(model_dir);
  const auto data = load_synth_facts(split);
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& ex : data.examples) prompts.push_back(tok.encode(synth_facts_prompt(ex), true));
  const std::string what = model_dir + ": synth-facts";
  const auto pick = last_position_choices(fm, prompts, candidate_ids(tok, synth_facts_targets(), what), what);
  int64_t right = 0;
  for (size_t i = 0; i < data.examples.size(); ++i) right += pick[i] == data.examples[i].label_index;
  return static_cast<double>(right) / static_cast<double>(data.examples.size());
}

PretrainResult ensure_pretrained(const PretrainConfig& c, const std::string& out_dir, std::ostream& progress) {
  LOPA_CHECK(!out_dir.empty(), "lopa pretrain: empty output directory");
  if (is_complete_pretrain(out_dir)) return read_record(out_dir);
  LOPA_CHECK(!fs::exists(out_dir), out_dir, ": exists but is not a complete pretraining (no pretrain.json); remove it");
  LOPA_CHECK(c.steps > 0 && c.batch_size > 0 && c.seq_len > 1 && c.warmup_steps >= 0, "lopa pretrain: bad steps/batch/length");
  const auto t0 = std::chrono::steady_clock::now();
  auto pg = ProcessGroup::init(static_cast<int>(c.tp), c.device);
  LOPA_CHECK(c.batch_size % pg.dp_size == 0, "lopa pretrain: --batch-size ", c.batch_size, " is not a multiple of the ",
             pg.dp_size, " data-parallel ranks");
  const bool root = pg.is_root();

  // Every rank writes into the same temp dir: rank 0's name, broadcast.
  auto pid = at::tensor({static_cast<int64_t>(getpid())}, at::kLong);
  pg.world->broadcast(pid, 0);
  const std::string tmp = out_dir + ".tmp-" + std::to_string(pid.item<int64_t>());
  const auto tok_files = make_word_tokenizer(synth::lexicon(synth_world()));
  if (root) {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    write_word_tokenizer(tok_files, tmp);
    nlohmann::ordered_json mc = {
        {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", c.hidden_size},
        {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_layers},
        {"num_attention_heads", c.num_heads}, {"num_key_value_heads", c.num_kv_heads},
        {"vocab_size", tok_files.vocab_size}, {"max_position_embeddings", 256}, {"rope_theta", 10000.0},
        {"rms_norm_eps", 1e-5}, {"hidden_act", "silu"}, {"attention_bias", false}, {"mlp_bias", false},
        {"initializer_range", 0.02}, {"tie_word_embeddings", true}, {"bos_token_id", 0}, {"eos_token_id", 0},
        {"torch_dtype", "float32"}};
    write_file_atomic(tmp + "/init_config.json", mc.dump(2));
    init_model(tmp + "/init_config.json", tmp, "", c.seed);
    fs::remove(tmp + "/init_config.json");
  }
  pg.world->barrier();
  const auto tok = Tokenizer::from_dir(tmp);
  auto fm = CausalLM::load(tmp, pg);
  fm.set_trainable(true);
  auto named = fm.named_parameters();
  std::vector<at::Tensor> params, decay, no_decay;
  for (auto& p : named) {
    params.push_back(p.tensor);
    (p.tensor.dim() >= 2 ? decay : no_decay).push_back(p.tensor);  // norms are not decayed
  }
  DataParallel dp(pg.dp, params);
  torch::optim::AdamWOptions opts(c.lr);
  opts.betas({0.9, 0.95}).weight_decay(c.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(opts));
  auto nd = std::make_unique<torch::optim::AdamWOptions>(opts);
  nd->weight_decay(0);
  groups.emplace_back(no_decay, std::move(nd));
  torch::optim::AdamW opt(groups, opts);

  CorpusStream train(tok, c.data_seed, c.seq_len), held_out(tok, c.data_seed + 1000003, c.seq_len);
  const auto val_ids = held_out.rows(16).to(pg.device);
  const int64_t local = c.batch_size / pg.dp_size;
  if (root)
    progress << "lopa pretrain: " << fm.num_parameters() << " parameters (" << c.num_layers << " layers, d "
             << c.hidden_size << ", vocab " << fm.vocab_size() << "), " << c.steps << " steps x " << c.batch_size
             << " x " << c.seq_len << " tokens, " << pg.describe() << std::endl;

  std::vector<int64_t> steps_logged;
  std::vector<double> losses;
  nlohmann::json val_curve = nlohmann::json::array();
  double first_loss = NAN, window = 0;
  int64_t window_n = 0;
  auto tw = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < c.steps; ++step) {
    auto global = train.rows(c.batch_size);
    auto ids = global.narrow(0, pg.dp_rank * local, local).to(pg.device);
    // Cosine to min_lr_ratio after the warmup (schedule.h's cosine decays to 0: rescale it).
    const double f = schedule_factor("cosine", step, c.warmup_steps, c.steps);
    const double lr = c.lr * (step < c.warmup_steps ? f : c.min_lr_ratio + (1 - c.min_lr_ratio) * f);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt.zero_grad();
    auto loss = fm.lm_loss(fm.forward(fm.embed(ids), at::Tensor()), ids);
    loss.backward();
    if (pg.dp_size > 1) dp.average_gradients();
    double sq_rep = 0, sq_shard = 0;
    for (auto& p : named) {
      if (!p.tensor.grad().defined()) continue;
      const double v = p.tensor.grad().to(at::kDouble).pow(2).sum().item<double>();
      (p.shard.split == Split::Replicated ? sq_rep : sq_shard) += v;
    }
    if (pg.tp_size > 1) {
      auto t = at::tensor({sq_shard}, at::kDouble);
      pg.tp->all_reduce(t, ReduceOp::Sum);
      sq_shard = t.item<double>();
    }
    const double norm = std::sqrt(sq_rep + sq_shard);
    if (c.max_grad_norm > 0 && norm > c.max_grad_norm) {
      at::NoGradGuard g;
      for (auto& p : params)
        if (p.grad().defined()) p.grad().mul_(c.max_grad_norm / (norm + 1e-6));
    }
    opt.step();
    auto lt = at::tensor({loss.item<double>()}, at::kDouble);
    if (pg.dp_size > 1) pg.dp->all_reduce(lt, ReduceOp::Sum);
    const double l = lt.item<double>() / pg.dp_size;
    if (step == 0) first_loss = l;
    window += l, ++window_n;
    const bool last = step + 1 == c.steps;
    if ((step + 1) % c.log_every == 0 || last || step == 0) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - tw).count();
      const double tps = static_cast<double>(window_n * c.batch_size * c.seq_len) / std::max(secs, 1e-9);
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      steps_logged.push_back(step + 1);
      losses.push_back(window / window_n);
      if (root)
        progress << "lopa pretrain: step " << step + 1 << "/" << c.steps << "  loss " << fmt(window / window_n)
                 << "  lr " << std::scientific << std::setprecision(2) << lr << std::defaultfloat << "  "
                 << static_cast<int64_t>(tps) << " tokens/s  " << fmt(el, 0) << " s" << std::endl;
      window = 0, window_n = 0;
      tw = std::chrono::steady_clock::now();
    }
    if (((step + 1) % c.eval_every == 0 && !last) || last) {
      const double v = mean_loss(fm, val_ids);
      val_curve.push_back({{"step", step + 1}, {"loss", v}});
      if (root && !last) progress << "lopa pretrain: step " << step + 1 << " held-out loss " << fmt(v) << std::endl;
    }
  }

  PretrainResult r;
  r.dir = out_dir;
  r.first_loss = first_loss;
  r.final_loss = losses.empty() ? NAN : losses.back();
  r.val_loss = val_curve.back()["loss"].get<double>();
  r.fact_recall = pg.tp_size == 1 ? recall(fm, tok) : NAN;  // recall's batch layout assumes whole logits on one rank
  r.parameters = fm.num_parameters();
  fm.set_trainable(false);
  if (pg.dp_rank == 0) fm.save_pretrained(tmp);  // collective over the tp group; its rank 0 writes
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (root) {
    nlohmann::ordered_json rec;
    rec["config"] = config_json(c);
    rec["hash"] = pretrain_hash(c);
    rec["parameters"] = r.parameters;
    rec["world_size"] = pg.world_size;
    rec["tp"] = pg.tp_size;
    rec["dp"] = pg.dp_size;
    rec["first_loss"] = r.first_loss;
    rec["final_loss"] = r.final_loss;
    rec["val_loss"] = r.val_loss;
    if (!std::isnan(r.fact_recall)) rec["fact_recall"] = r.fact_recall;
    rec["seconds"] = r.seconds;
    rec["tokens"] = c.steps * c.batch_size * c.seq_len;
    rec["train"] = {{"step", steps_logged}, {"loss", losses}};
    rec["eval"] = val_curve;
    write_file_atomic(tmp + "/pretrain.json", rec.dump(1) + "\n");  // last: marks the directory complete
    std::error_code ec;
    fs::rename(tmp, out_dir, ec);
    if (ec) {
      // Another process finished the same configuration first: keep theirs.
      LOPA_CHECK(is_complete_pretrain(out_dir), "cannot move ", tmp, " to ", out_dir, ": ", ec.message());
      fs::remove_all(tmp);
    }
    progress << "lopa pretrain: loss " << fmt(r.first_loss) << " -> " << fmt(r.final_loss) << ", held-out "
             << fmt(r.val_loss) << ", fact recall " << fmt(100 * r.fact_recall, 1) << "% (chance 25%), "
             << fmt(r.seconds, 0) << " s; wrote " << out_dir << std::endl;
  }
  pg.world->barrier();
  return r;
}

}  // namespace lopa
