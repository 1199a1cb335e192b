#include "serve/engine.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/base/error.h"
#include "runtime/distributed/communicator.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/generation.h"
#include "runtime/tokenizer/tokenizer.h"
#include "serve/adapters.h"

namespace lopa::serve {

namespace {
using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<size_t>(std::max(0.0, std::ceil(q * static_cast<double>(v.size())) - 1));
  return v[std::min(i, v.size() - 1)];
}
}  // namespace

struct Engine::Row {
  std::shared_ptr<Job> job;
  int64_t lora = -1;
  int64_t last = 0;  // the token the next step feeds
  std::vector<int64_t> generated;
  at::Generator gen;
  bool finished = false;
  bool cancel = false;  // cancelled as of this iteration (the same on every rank)
};

Engine::Engine(CausalLM& fm, const Tokenizer& tok, AdapterSet& adapters, int64_t max_batch, Communicator* tp)
    : fm_(fm), tok_(tok), adapters_(adapters), max_batch_(max_batch) {
  if (tp && tp->size() > 1) {
    tp_ = tp;
    leader_ = tp->rank() == 0;
  }
  LOPA_CHECK(max_batch >= 1, "--max-batch must be at least 1");
  // As `lopa generate`: the model config's EOS ids, else the tokenizer's.
  eos_ = fm.config().eos_token_ids;
  if (eos_.empty() && tok.eos_id()) eos_ = {*tok.eos_id()};
  totals_.max_batch = max_batch;
  if (leader_) thread_ = std::thread([this] { loop(); });
}

void Engine::follow() {
  LOPA_CHECK(!leader_, "Engine::follow: the leader runs its own loop");
  loop();
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    draining_ = true;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Engine::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (draining_) return false;
    job->submitted = Clock::now();
    queue_.push_back(job);
  }
  cv_.notify_all();
  return true;
}

void Engine::drain() {
  std::unique_lock<std::mutex> lk(mu_);
  draining_ = true;
  cv_.notify_all();
  idle_cv_.wait(lk, [&] { return queue_.empty() && active_ == 0; });
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  EngineStats s = totals_;
  s.active = active_;
  s.queued = static_cast<int64_t>(queue_.size());
  s.p50_latency_s = quantile(latencies_, 0.5);
  s.p99_latency_s = quantile(latencies_, 0.99);
  s.p50_ttft_s = quantile(ttfts_, 0.5);
  s.p99_ttft_s = quantile(ttfts_, 0.99);
  return s;
}

std::string Engine::completion_text(const std::vector<int64_t>& prompt_ids, const std::vector<int64_t>& tokens) const {
  if (tokens.empty()) return "";
  std::vector<int64_t> all = prompt_ids;
  all.insert(all.end(), tokens.begin(), tokens.end());
  const auto whole = tok_.decode(all, true), prompt = tok_.decode(prompt_ids, true);
  if (whole.compare(0, prompt.size(), prompt) == 0) return whole.substr(prompt.size());
  return tok_.decode(tokens, true);
}

void Engine::finish(Job& job, const std::string& reason, const std::string& error) {
  {
    std::lock_guard<std::mutex> lk(job.mu);
    if (job.done()) return;
    job.finish_reason = reason;
    job.error = error;
    job.finished = Clock::now();
  }
  job.cv.notify_all();
  std::lock_guard<std::mutex> lk(mu_);
  if (reason == "cancelled") {
    ++totals_.requests_cancelled;
  } else if (reason == "error") {
    ++totals_.requests_failed;
  } else {
    ++totals_.requests_finished;
    if (latencies_.size() >= 4096) {
      latencies_.erase(latencies_.begin());
      ttfts_.erase(ttfts_.begin());
    }
    latencies_.push_back(seconds(job.submitted, job.finished));
    ttfts_.push_back(seconds(job.submitted, job.first_token));
  }
}

bool Engine::emit(Row& row, int64_t token) {
  Job& job = *row.job;
  row.generated.push_back(token);
  row.last = token;
  std::string reason;
  size_t text_end = std::string::npos;
  if (!job.params.ignore_eos && std::find(eos_.begin(), eos_.end(), token) != eos_.end()) reason = "stop";
  if (!job.params.stop.empty()) {
    const auto text = completion_text(job.prompt_ids, row.generated);
    for (const auto& s : job.params.stop) {
      const auto at = text.find(s);
      if (at != std::string::npos && at < text_end) text_end = at;
    }
    if (text_end != std::string::npos) reason = "stop";
  }
  if (reason.empty() && static_cast<int64_t>(row.generated.size()) >= job.params.max_tokens) reason = "length";
  {
    std::lock_guard<std::mutex> lk(job.mu);
    if (job.tokens.empty()) job.first_token = Clock::now();
    job.tokens.push_back(token);
    job.text_end = text_end;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++totals_.completion_tokens;
  }
  if (!reason.empty()) {
    finish(job, reason);
    row.finished = true;
  } else {
    job.cv.notify_all();
  }
  return row.finished;
}

void Engine::admit(const std::shared_ptr<Job>& job) {
  auto row = std::make_unique<Row>();
  row->job = job;
  const ServedAdapter* a = job->adapter;
  row->lora = a ? a->lora : -1;
  auto& bank = adapters_.lora_bank();
  try {
    at::Tensor sp = job->soft_prompt;
    if (!sp.defined() && a) {
      bank.clear();  // an encoder that is the FM itself must see the plain FM
      sp = adapters_.soft_prompt(*a, job->prompt_ids);
    }
    // Prefill alone, as generate() prefills a batch of one: [soft prompt; prompt] after any KV prefix.
    bank.set_rows({row->lora});
    const int64_t L = static_cast<int64_t>(job->prompt_ids.size());
    auto embeds = fm_.embed(at::tensor(job->prompt_ids, at::TensorOptions().dtype(at::kLong)).view({1, L}));
    if (sp.defined()) embeds = at::cat({sp.to(fm_.device(), embeds.scalar_type()), embeds}, 1);
    const int64_t T = embeds.size(1);
    auto cache = KVCache::for_model(fm_, 1, T + 1);
    if (a && a->prefix_length() > 0) cache.set_prefix(a->prefix_k, a->prefix_v);
    auto h = fm_.forward(embeds, at::ones({1, T}, at::TensorOptions().dtype(at::kLong).device(fm_.device())), &cache,
                         {}, T - 1);  // only the last position's state is read
    auto logits = fm_.lm_logits(h.select(1, 0)).to(at::kCPU, at::kFloat);
    row->gen = at::detail::createCPUGenerator(job->params.seed);
    {
      std::lock_guard<std::mutex> lk(mu_);
      totals_.prompt_tokens += L;
    }
    const int64_t tok = sample_next(logits[0], job->params.temperature, job->params.top_p, row->gen);
    if (emit(*row, tok)) return;
    cache_.add_rows(cache);
    rows_.push_back(std::move(row));
    ++active_;
  } catch (const std::exception& e) {
    finish(*job, "error", e.what());
  }
}

void Engine::step() {
  const int64_t B = static_cast<int64_t>(rows_.size());
  std::vector<int64_t> last(B), loras(B);
  for (int64_t b = 0; b < B; ++b) {
    last[b] = rows_[b]->last;
    loras[b] = rows_[b]->lora;
  }
  adapters_.lora_bank().set_rows(loras);
  const auto ids = at::tensor(last, at::TensorOptions().dtype(at::kLong)).view({B, 1});
  auto h = fm_.forward(fm_.embed(ids), at::ones({B, 1}, at::TensorOptions().dtype(at::kLong).device(fm_.device())), &cache_);
  auto logits = fm_.lm_logits(h.select(1, 0)).to(at::kCPU, at::kFloat);
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++totals_.decode_steps;
    totals_.rows_stepped += B;
  }
  for (int64_t b = 0; b < B; ++b) {
    Row& r = *rows_[b];
    if (r.job->batch_rows_max < B) r.job->batch_rows_max = B;
    if (r.cancel) {
      finish(*r.job, "cancelled");
      r.finished = true;
      continue;
    }
    emit(r, sample_next(logits[b], r.job->params.temperature, r.job->params.top_p, r.gen));
  }
}

void Engine::retire() {
  std::vector<int64_t> keep;
  for (size_t i = 0; i < rows_.size(); ++i) {
    if (!rows_[i]->finished && rows_[i]->cancel) {
      finish(*rows_[i]->job, "cancelled");
      rows_[i]->finished = true;
    }
    if (!rows_[i]->finished) keep.push_back(static_cast<int64_t>(i));
  }
  if (keep.size() == rows_.size()) return;
  cache_.keep_rows(keep);
  std::vector<std::unique_ptr<Row>> kept;
  for (auto i : keep) kept.push_back(std::move(rows_[i]));
  rows_ = std::move(kept);
  active_ = static_cast<int64_t>(rows_.size());
}

void Engine::loop() {
  // Inference mode: nothing here meets autograd (as generate()).
  c10::InferenceMode inference;
  while (true) {
    std::vector<std::shared_ptr<Job>> admitted;
    std::vector<int64_t> cancel_rows;
    bool stop = false;
    if (leader_) {
      std::unique_lock<std::mutex> lk(mu_);
      if (queue_.empty() && rows_.empty()) idle_cv_.notify_all();
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || !rows_.empty(); });
      stop = stop_ && queue_.empty() && rows_.empty();
      while (!stop && !queue_.empty() && static_cast<int64_t>(rows_.size() + admitted.size()) < max_batch_) {
        auto job = queue_.front();
        queue_.pop_front();
        if (job->cancelled) {
          lk.unlock();
          finish(*job, "cancelled");
          lk.lock();
          continue;
        }
        admitted.push_back(job);
      }
      active_ += static_cast<int64_t>(admitted.size());  // counted as running while prefilled
      // A snapshot: a client may go away at any moment, but every rank must drop the same rows.
      for (size_t i = 0; i < rows_.size(); ++i)
        if (rows_[i]->job->cancelled) cancel_rows.push_back(static_cast<int64_t>(i));
    }
    if (tp_) sync(stop, admitted, cancel_rows);
    if (stop) break;
    for (auto i : cancel_rows) rows_.at(i)->cancel = true;
    for (const auto& job : admitted) {
      if (leader_) --active_;
      admit(job);
    }
    if (!rows_.empty()) step();
    retire();
  }
  adapters_.lora_bank().clear();
  idle_cv_.notify_all();
}

namespace {
// Strings and doubles travel as int64 tensors (every backend broadcasts those).
int64_t bits_of(double x) {
  int64_t v;
  std::memcpy(&v, &x, sizeof v);
  return v;
}
double double_of(int64_t v) {
  double x;
  std::memcpy(&x, &v, sizeof x);
  return x;
}
}  // namespace

void Engine::sync(bool& stop, std::vector<std::shared_ptr<Job>>& admitted, std::vector<int64_t>& cancel_rows) {
  auto& c = *tp_;
  const auto i64 = at::TensorOptions().dtype(at::kLong).device(fm_.device());
  auto bcast_longs = [&](std::vector<int64_t>& v, int64_t n) {
    if (n == 0) return;
    auto t = leader_ ? at::tensor(v, at::TensorOptions().dtype(at::kLong)).to(fm_.device()) : at::empty({n}, i64);
    c.broadcast(t, 0);
    if (leader_) return;  // (v may be a submitted job's field that a handler reads)
    t = t.to(at::kCPU);
    v.assign(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
  };
  std::vector<int64_t> head = {stop ? 1 : 0, static_cast<int64_t>(admitted.size()), static_cast<int64_t>(cancel_rows.size())};
  bcast_longs(head, 3);
  stop = head[0] != 0;
  bcast_longs(cancel_rows, head[2]);
  if (!leader_) admitted.clear();
  const auto& all = adapters_.all();
  for (int64_t k = 0; k < head[1]; ++k) {
    std::shared_ptr<Job> job = leader_ ? admitted[k] : std::make_shared<Job>();
    std::vector<int64_t> meta(10, 0);
    std::vector<int64_t> stop_chars;
    if (leader_) {
      int64_t idx = -1;
      for (size_t i = 0; i < all.size(); ++i)
        if (all[i].get() == job->adapter) idx = static_cast<int64_t>(i);
      for (const auto& s : job->params.stop) {
        stop_chars.push_back(static_cast<int64_t>(s.size()));
        for (char ch : s) stop_chars.push_back(static_cast<unsigned char>(ch));
      }
      meta = {static_cast<int64_t>(job->prompt_ids.size()), idx,
              job->soft_prompt.defined() ? job->soft_prompt.size(1) : 0, job->params.max_tokens,
              static_cast<int64_t>(job->params.seed), job->params.ignore_eos ? 1 : 0,
              static_cast<int64_t>(job->params.stop.size()), static_cast<int64_t>(stop_chars.size()),
              bits_of(job->params.temperature), bits_of(job->params.top_p)};
    }
    bcast_longs(meta, 10);
    bcast_longs(job->prompt_ids, meta[0]);
    at::Tensor sp = leader_ && meta[2] > 0 ? job->soft_prompt.to(fm_.device()).contiguous()
                                           : at::empty({1, meta[2], fm_.hidden_size()}, at::TensorOptions().device(fm_.device()));
    if (meta[2] > 0) c.broadcast(sp, 0);
    bcast_longs(stop_chars, meta[7]);
    if (leader_) continue;
    job->adapter = meta[1] >= 0 ? all.at(meta[1]).get() : nullptr;
    if (meta[2] > 0) job->soft_prompt = sp.to(at::kCPU);
    job->params.max_tokens = meta[3];
    job->params.seed = static_cast<uint64_t>(meta[4]);
    job->params.ignore_eos = meta[5] != 0;
    job->params.temperature = double_of(meta[8]);
    job->params.top_p = double_of(meta[9]);
    for (size_t i = 0; i < stop_chars.size();) {
      const auto n = static_cast<size_t>(stop_chars[i++]);
      std::string s;
      for (size_t j = 0; j < n; ++j) s += static_cast<char>(stop_chars[i++]);
      job->params.stop.push_back(s);
    }
    job->submitted = Clock::now();
    admitted.push_back(job);
  }
}

}  // namespace lopa::serve
