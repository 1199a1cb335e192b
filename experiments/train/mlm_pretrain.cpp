#include "experiments/train/mlm_pretrain.h"

#include <torch/torch.h>  // torch::optim::AdamW

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "experiments/tasks/glue.h"
#include "experiments/train/schedule.h"
#include "runtime/base/error.h"
#include "runtime/io/atomic_file.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/init_model.h"
#include "runtime/tokenizer/tokenizer.h"

namespace lopa {

namespace fs = std::filesystem;

MlmBatch mask_tokens(const at::Tensor& ids, const at::Tensor& special, int64_t mask_id, int64_t vocab_size, double prob,
                     std::mt19937_64& rng) {
  LOPA_CHECK(ids.dim() == 2 && special.sizes() == ids.sizes(), "mask_tokens: ids and special must be B × T alike");
  auto in = ids.to(at::kLong).contiguous().clone();
  auto labels = at::full_like(in, -100);
  auto sp = special.to(at::kBool).contiguous();
  auto* x = in.data_ptr<int64_t>();
  auto* y = labels.data_ptr<int64_t>();
  const auto* s = sp.data_ptr<bool>();
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::uniform_int_distribution<int64_t> word(0, vocab_size - 1);
  for (int64_t i = 0; i < in.numel(); ++i) {
    if (s[i] || u(rng) >= prob) continue;
    y[i] = x[i];
    const double r = u(rng);
    if (r < 0.8) x[i] = mask_id;
    else if (r < 0.9) x[i] = word(rng);
  }
  return {in, labels};
}

std::vector<std::string> glue_train_documents(const std::string& data_dir) {
  std::vector<std::string> docs;
  const std::vector<std::pair<std::string, std::vector<std::string>>> fields = {
      {"sst2", {"sentence"}},           {"rte", {"sentence1", "sentence2"}},  {"mrpc", {"sentence1", "sentence2"}},
      {"qnli", {"question", "sentence"}}, {"qqp", {"question1", "question2"}}, {"mnli", {"sentence1", "sentence2"}}};
  for (const auto& [task, names] : fields) {
    const auto& info = task_info(task);
    if (!fs::exists(glue_file(info, data_dir, "train"))) continue;
    LoadOptions lo;
    lo.skip_bad_rows = true;
    for (const auto& ex : load_glue(info, data_dir, "train", lo).examples) {
      std::string d;
      for (const auto& n : names) d += (d.empty() ? "" : "\n") + ex.fields.at(n);
      docs.push_back(std::move(d));
    }
  }
  LOPA_CHECK(!docs.empty(), data_dir, ": no GLUE train split found (glue/<TASK>/train.tsv)");
  return docs;
}

std::vector<std::string> text_documents(const std::string& path) {
  std::ifstream in(path);
  LOPA_CHECK(in, path, ": cannot read");
  std::vector<std::string> docs;
  std::string line;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) docs.push_back(line);
  LOPA_CHECK(!docs.empty(), path, ": no documents (one non-empty line each)");
  return docs;
}

namespace {

// Encoded documents (special tokens added, cut to `len` keeping the last token) and their batches.
struct Corpus {
  std::vector<std::vector<int64_t>> docs;
  int64_t pad = 0;
  // Right-padded rows and the positions never masked (special tokens and padding).
  std::pair<at::Tensor, at::Tensor> batch(const std::vector<int64_t>& idx, const std::vector<bool>& is_special) const {
    int64_t T = 0;
    for (auto i : idx) T = std::max<int64_t>(T, docs[i].size());
    auto ids = at::full({static_cast<int64_t>(idx.size()), T}, pad, at::kLong);
    auto sp = at::ones({static_cast<int64_t>(idx.size()), T}, at::kBool);
    auto I = ids.accessor<int64_t, 2>();
    auto S = sp.accessor<bool, 2>();
    for (size_t r = 0; r < idx.size(); ++r)
      for (size_t j = 0; j < docs[idx[r]].size(); ++j) {
        const int64_t v = docs[idx[r]][j];
        I[r][j] = v;
        S[r][j] = v >= 0 && v < static_cast<int64_t>(is_special.size()) && is_special[v];
      }
    return {ids, sp};
  }
};

// `ids`: the batch before masking, whose padding gives the attention mask and the positions (a random
// replacement by the pad id must not turn a real position into padding).
at::Tensor mlm_loss(const CausalLM& fm, const at::Tensor& ids, const MlmBatch& b, int64_t pad) {
  auto mask = ids.ne(pad).to(at::kLong);
  auto hidden = fm.forward(fm.embed(b.inputs), mask, nullptr, fm.architecture().position_ids(ids));
  auto keep = b.labels.ne(-100);
  if (!keep.any().item<bool>()) return at::zeros({}, at::kFloat);
  auto h = hidden.masked_select(keep.unsqueeze(-1)).view({-1, hidden.size(2)});
  return at::cross_entropy_loss(fm.lm_logits(h).to(at::kFloat), b.labels.masked_select(keep));
}

std::string fmt(double v, int prec = 3) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(prec) << v;
  return o.str();
}

}  // namespace

MlmPretrainResult pretrain_mlm(const MlmPretrainConfig& c, const std::vector<std::string>& documents,
                               const std::string& out_dir, std::ostream& progress) {
  LOPA_CHECK(!out_dir.empty(), "lopa pretrain: --out is required for the mlm objective");
  LOPA_CHECK(!fs::exists(out_dir), out_dir, ": exists; remove it or choose another --out");
  LOPA_CHECK(c.steps > 0 && c.batch_size > 0 && c.seq_len >= 4 && c.warmup_steps >= 0 && c.mask_prob > 0 &&
                 c.mask_prob < 1,
             "lopa pretrain: bad steps / batch / sequence length / mask probability");
  LOPA_CHECK(documents.size() >= 2, "lopa pretrain: fewer than 2 documents");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string tmp = out_dir + ".tmp-" + std::to_string(getpid());
  fs::remove_all(tmp);
  // A failed run leaves nothing behind.
  struct RemoveOnError {
    std::string dir;
    bool done = false;
    ~RemoveOnError() {
      std::error_code ec;
      if (!done) fs::remove_all(dir, ec);
    }
  } guard{tmp};
  init_model(c.model_config, tmp, c.tokenizer_dir, c.seed);
  auto pg = ProcessGroup::single();
  auto fm = CausalLM::load(tmp, pg);
  const auto& spec = fm.architecture().spec();
  LOPA_CHECK(!spec.causal && spec.has_lm_head, c.model_config, ": ", fm.config().architecture,
             " is not a masked LM (the mlm objective trains a *ForMaskedLM architecture)");
  const auto tok = Tokenizer::from_dir(tmp);
  const auto mask_id = tok.mask_id();
  LOPA_CHECK(mask_id.has_value(), c.tokenizer_dir, ": the tokenizer has no mask token");
  LOPA_CHECK(tok.vocab_size() <= fm.vocab_size(), c.model_config, ": vocab_size ", fm.vocab_size(),
             " is smaller than the tokenizer's ", tok.vocab_size());

  Corpus corpus;
  corpus.pad = tok.pad_id().value_or(0);
  std::vector<bool> is_special(fm.vocab_size(), false);
  for (auto id : {tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.mask_id()})
    if (id && *id < fm.vocab_size()) is_special[*id] = true;
  for (const auto& d : documents) {
    auto ids = tok.encode(d, true);
    if (static_cast<int64_t>(ids.size()) > c.seq_len) {
      const int64_t last = ids.back();
      ids.resize(c.seq_len - 1);
      ids.push_back(last);
    }
    corpus.docs.push_back(std::move(ids));
  }
  std::mt19937_64 rng(c.data_seed);
  std::vector<int64_t> order(corpus.docs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t n_val = std::max<int64_t>(1, std::min<int64_t>(512, order.size() * c.held_out));
  std::vector<int64_t> val(order.end() - n_val, order.end()), train(order.begin(), order.end() - n_val);
  // The held-out batch is masked once, with its own stream, so every evaluation scores the same tokens.
  std::mt19937_64 val_rng(c.data_seed + 7);
  std::vector<int64_t> val_rows(val.begin(), val.begin() + std::min<int64_t>(val.size(), 64));
  const auto val_in = corpus.batch(val_rows, is_special);
  const at::Tensor val_ids = val_in.first;
  const auto val_batch = mask_tokens(val_ids, val_in.second, *mask_id, tok.vocab_size(), c.mask_prob, val_rng);
  auto val_loss = [&] {
    at::NoGradGuard g;
    return mlm_loss(fm, val_ids, val_batch, corpus.pad).item<double>();
  };

  fm.set_trainable(true);
  std::vector<at::Tensor> decay, no_decay, params;
  for (auto& p : fm.named_parameters()) {
    params.push_back(p.tensor);
    (p.tensor.dim() >= 2 ? decay : no_decay).push_back(p.tensor);
  }
  torch::optim::AdamWOptions opts(c.lr);
  opts.betas({0.9, 0.98}).eps(1e-6).weight_decay(c.weight_decay);  // RoBERTa's pretraining betas and eps
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(opts));
  auto nd = std::make_unique<torch::optim::AdamWOptions>(opts);
  nd->weight_decay(0);
  groups.emplace_back(no_decay, std::move(nd));
  torch::optim::AdamW opt(groups, opts);
  progress << "lopa pretrain: mlm, " << fm.num_parameters() << " parameters (" << fm.config().architecture << ", "
           << fm.num_layers() << " layers, d " << fm.hidden_size() << ", vocab " << fm.vocab_size() << "), "
           << train.size() << " documents (+" << n_val << " held out), " << c.steps << " steps x " << c.batch_size
           << " x <= " << c.seq_len << " tokens" << std::endl;

  std::uniform_int_distribution<int64_t> pick(0, static_cast<int64_t>(train.size()) - 1);
  nlohmann::json steps_logged = nlohmann::json::array(), losses = nlohmann::json::array();
  double first_loss = NAN, window = 0, last_window = NAN;
  int64_t window_n = 0;
  for (int64_t step = 0; step < c.steps; ++step) {
    std::vector<int64_t> idx(c.batch_size);
    for (auto& i : idx) i = train[pick(rng)];
    auto [ids, special] = corpus.batch(idx, is_special);
    const auto b = mask_tokens(ids, special, *mask_id, tok.vocab_size(), c.mask_prob, rng);
    const double lr = c.lr * schedule_factor("linear", step, c.warmup_steps, c.steps);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt.zero_grad();
    auto loss = mlm_loss(fm, ids, b, corpus.pad);
    loss.backward();
    double sq = 0;
    for (auto& p : params)
      if (p.grad().defined()) sq += p.grad().to(at::kDouble).pow(2).sum().item<double>();
    const double norm = std::sqrt(sq);
    if (c.max_grad_norm > 0 && norm > c.max_grad_norm) {
      at::NoGradGuard g;
      for (auto& p : params)
        if (p.grad().defined()) p.grad().mul_(c.max_grad_norm / (norm + 1e-6));
    }
    opt.step();
    const double l = loss.item<double>();
    LOPA_CHECK(std::isfinite(l), "lopa pretrain: step ", step + 1, ": the loss is ", l, " (try a lower --pretrain-lr)");
    if (step == 0) first_loss = l;
    window += l, ++window_n;
    if ((step + 1) % c.log_every == 0 || step + 1 == c.steps) {
      last_window = window / window_n;
      steps_logged.push_back(step + 1);
      losses.push_back(last_window);
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      progress << "lopa pretrain: step " << step + 1 << "/" << c.steps << "  mlm loss " << fmt(last_window) << "  lr "
               << std::scientific << std::setprecision(2) << lr << std::defaultfloat << "  " << fmt(el, 0) << " s"
               << std::endl;
      window = 0, window_n = 0;
    }
  }
  MlmPretrainResult r;
  r.dir = out_dir;
  r.first_loss = first_loss;
  r.final_loss = last_window;
  r.val_loss = val_loss();
  r.parameters = fm.num_parameters();
  r.documents = static_cast<int64_t>(documents.size());
  fm.set_trainable(false);
  fm.save_pretrained(tmp);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::ordered_json rec;
  rec["objective"] = "mlm";
  rec["config"] = {{"model_config", c.model_config}, {"tokenizer", c.tokenizer_dir}, {"steps", c.steps},
                   {"batch_size", c.batch_size}, {"seq_len", c.seq_len}, {"warmup_steps", c.warmup_steps},
                   {"lr", c.lr}, {"weight_decay", c.weight_decay}, {"mask_prob", c.mask_prob}, {"seed", c.seed},
                   {"data_seed", c.data_seed}};
  rec["parameters"] = r.parameters;
  rec["documents"] = r.documents;
  rec["first_loss"] = r.first_loss;
  rec["final_loss"] = r.final_loss;
  rec["val_loss"] = r.val_loss;
  rec["seconds"] = r.seconds;
  rec["train"] = {{"step", steps_logged}, {"loss", losses}};
  write_file_atomic(tmp + "/pretrain.json", rec.dump(1) + "\n");  // last: marks the directory complete
  fs::rename(tmp, out_dir);
  guard.done = true;
  progress << "lopa pretrain: mlm loss " << fmt(r.first_loss) << " -> " << fmt(r.final_loss) << ", held-out "
           << fmt(r.val_loss) << ", " << fmt(r.seconds, 0) << " s; wrote " << out_dir << std::endl;
  return r;
}

}  // namespace lopa
