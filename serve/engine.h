// The continuous-batching decode loop of `lopa serve`: one thread owns the FM and runs, step after
// step, every admitted request of any task and method in one batch. A request joins when a slot
// frees: its prompt (with its soft prompt or KV prefix) is prefilled alone, exactly as `lopa generate`
// prefills it, and its cache rows are merged into the batch's cache right-aligned on one timeline
// (per-row padding masks give each row its own positions and length); LoRA rows are served by the
// bank's gathered matmul. Finished, stopped and cancelled rows leave at the end of a step.
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/model/kv_cache.h"

namespace lopa {
class CausalLM;
class Communicator;
class Tokenizer;
}  // namespace lopa

namespace lopa::serve {

class AdapterSet;
struct ServedAdapter;

struct SamplingParams {
  int64_t max_tokens = 16;
  double temperature = 0;  // 0: greedy
  double top_p = 1;
  uint64_t seed = 0;       // each request its own generator, as `lopa generate --seed`
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

// One completion request, shared between the HTTP handler that submits and reads it and the engine.
struct Job {
  // Set before submit, then read-only.
  std::vector<int64_t> prompt_ids;
  const ServedAdapter* adapter = nullptr;  // null: the plain FM (or the client's soft prompt)
  at::Tensor soft_prompt;                  // the client's 1 × m × d float32, or undefined
  SamplingParams params;

  // Progress, guarded by mu; cv is notified at every token and at the end.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int64_t> tokens;        // generated ids (EOS included when reached)
  std::string finish_reason;          // "" while running, then "stop" | "length" | "cancelled" | "error"
  std::string error;                  // with "error"
  size_t text_end = std::string::npos;  // the completion text ends here (before a stop string)
  std::chrono::steady_clock::time_point submitted, first_token, finished;

  std::atomic<bool> cancelled{false};  // set by the handler when its client went away
  std::atomic<int64_t> batch_rows_max{0};  // the most rows it shared a decode step with (itself included)
  bool done() const { return !finish_reason.empty(); }
};

struct EngineStats {
  int64_t requests_finished = 0, requests_cancelled = 0, requests_failed = 0;
  int64_t prompt_tokens = 0, completion_tokens = 0, decode_steps = 0, rows_stepped = 0;
  int64_t active = 0, queued = 0, max_batch = 0;
  double p50_latency_s = 0, p99_latency_s = 0, p50_ttft_s = 0, p99_ttft_s = 0;
};

class Engine {
 public:
  // tp: the FM's tensor-parallel communicator when it has more than one rank. Rank 0 of it leads: it
  // runs the loop on its own thread and takes the jobs; at every iteration it broadcasts what the
  // iteration does (jobs admitted, with their inputs; rows cancelled; stop), and the other ranks
  // replay it in follow(), so every collective of the FM runs in the same order everywhere.
  Engine(CausalLM& fm, const Tokenizer& tok, AdapterSet& adapters, int64_t max_batch, Communicator* tp = nullptr);
  ~Engine();  // stops the loop (finishing what runs); a leader tells the followers to stop

  bool leader() const { return leader_; }
  // A follower's loop, on the calling thread, until the leader stops.
  void follow();

  // Queues a job; false when the engine is draining (it no longer takes requests).
  bool submit(const std::shared_ptr<Job>& job);
  // Stops taking jobs and returns once every queued and running job has finished.
  void drain();
  bool draining() const { return draining_; }
  EngineStats stats() const;

  // The completion text of `tokens` after `prompt_ids`: the decoded whole minus the decoded prompt
  // (so a word-initial space survives), special tokens skipped.
  std::string completion_text(const std::vector<int64_t>& prompt_ids, const std::vector<int64_t>& tokens) const;

 private:
  struct Row;
  void loop();
  // Leader: broadcasts the iteration's decisions; follower: receives them (jobs rebuilt from the wire).
  void sync(bool& stop, std::vector<std::shared_ptr<Job>>& admitted, std::vector<int64_t>& cancel_rows);
  void admit(const std::shared_ptr<Job>& job);
  void step();
  void retire();
  // Records a generated token; true when the row is finished.
  bool emit(Row& row, int64_t token);
  void finish(Job& job, const std::string& reason, const std::string& error = "");

  CausalLM& fm_;
  const Tokenizer& tok_;
  AdapterSet& adapters_;
  const int64_t max_batch_;
  Communicator* tp_ = nullptr;  // null: one rank
  bool leader_ = true;
  std::vector<int64_t> eos_;

  std::vector<std::unique_ptr<Row>> rows_;  // engine thread only
  KVCache cache_;                           // the batch's cache, row i = rows_[i]

  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::atomic<int64_t> active_{0};
  std::atomic<bool> draining_{false};
  bool stop_ = false;
  // Statistics (mu_).
  EngineStats totals_;
  std::vector<double> latencies_, ttfts_;  // the last 4096 finished requests
  std::thread thread_;
};

}  // namespace lopa::serve
