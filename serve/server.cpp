#include "serve/server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "runtime/base/error.h"
#include "runtime/base/json.h"
#include "runtime/distributed/mpi_runtime.h"
#include "runtime/distributed/process_group.h"
#include "runtime/model/causal_lm.h"
#include "runtime/tokenizer/tokenizer.h"
#include "serve/adapters.h"
#include "serve/engine.h"
#include "serve/soft_prompt_codec.h"

namespace lopa::serve {

using json = nlohmann::json;

namespace {

std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop = true; }

// A request the server refuses: HTTP 400 with this message, naming the offending field.
struct BadRequest {
  std::string message, param;
};

template <typename... Args>
[[noreturn]] void bad(const std::string& param, const Args&... parts) {
  throw BadRequest{str(parts...), param};
}

json error_body(const std::string& message, const std::string& type, const std::string& param) {
  return {{"error",
           {{"message", message}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)}, {"code", nullptr}}}};
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

// The longest prefix of `text` that is safe to stream: no trailing incomplete or replacement
// character (a token boundary inside a UTF-8 sequence), nor a tail that could begin a stop string.
size_t safe_prefix(const std::string& text, const std::vector<std::string>& stop) {
  size_t n = text.size();
  static const std::string kReplacement = "\xEF\xBF\xBD";
  while (n >= 3 && text.compare(n - 3, 3, kReplacement) == 0) n -= 3;
  size_t hold = 0;
  for (const auto& s : stop)
    for (size_t k = std::min(s.size() - 1, n); k > hold; --k)
      if (text.compare(n - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  return n - hold;
}

class Api {
 public:
  Api(CausalLM& fm, const Tokenizer& tok, AdapterSet& adapters, Engine& engine, const ServeOptions& opt)
      : fm_(fm), tok_(tok), adapters_(adapters), engine_(engine), opt_(opt) {
    model_id_ = std::filesystem::path(opt.model).lexically_normal().filename().string();
    if (model_id_.empty()) model_id_ = std::filesystem::path(opt.model).lexically_normal().parent_path().filename().string();
    context_ = fm.config().max_position_embeddings;
    max_tokens_ = opt.max_tokens > 0 ? opt.max_tokens : context_;
  }

  void install(httplib::Server& svr) {
    svr.set_payload_max_length(size_t(64) << 20);  // a soft prompt of 64 × 65536 floats fits
    svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { completions(req, res); });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { models(res); });
    svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (engine_.draining()) send_json(res, 503, {{"status", "draining"}});
      else send_json(res, 200, {{"status", "ok"}});
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { metrics(res); });
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.status == 404) send_json(res, 404, error_body("no route " + req.method + " " + req.path, "not_found", ""));
    });
  }

  int64_t in_flight() const { return in_flight_; }

 private:
  void models(httplib::Response& res) {
    json data = json::array();
    const auto created = static_cast<int64_t>(std::time(nullptr));
    data.push_back({{"id", model_id_}, {"object", "model"}, {"created", created}, {"owned_by", "lopa"},
                    {"root", opt_.model}, {"max_model_len", context_}});
    for (const auto& a : adapters_.all())
      data.push_back({{"id", a->name}, {"object", "model"}, {"created", created}, {"owned_by", "lopa"},
                      {"root", a->run_dir}, {"parent", model_id_}, {"method", a->cfg.method}});
    send_json(res, 200, {{"object", "list"}, {"data", data}});
  }

  void metrics(httplib::Response& res) {
    const auto s = engine_.stats();
    std::ostringstream o;
    auto line = [&](const std::string& name, const std::string& help, const std::string& type, auto value,
                    const std::string& labels = "") {
      if (!help.empty()) o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
      o << name << labels << " " << value << "\n";
    };
    line("lopa_requests_total", "completion requests by outcome", "counter", s.requests_finished, "{outcome=\"ok\"}");
    line("lopa_requests_total", "", "", s.requests_cancelled, "{outcome=\"cancelled\"}");
    line("lopa_requests_total", "", "", s.requests_failed, "{outcome=\"error\"}");
    line("lopa_requests_total", "", "", bad_requests_.load(), "{outcome=\"bad_request\"}");
    line("lopa_prompt_tokens_total", "prompt tokens prefilled", "counter", s.prompt_tokens);
    line("lopa_completion_tokens_total", "tokens generated", "counter", s.completion_tokens);
    line("lopa_decode_steps_total", "batched decode steps", "counter", s.decode_steps);
    line("lopa_batch_occupancy", "rows in the running batch", "gauge", s.active);
    line("lopa_batch_occupancy_mean", "mean rows per decode step", "gauge",
         s.decode_steps ? static_cast<double>(s.rows_stepped) / static_cast<double>(s.decode_steps) : 0.0);
    line("lopa_max_batch", "batch slots (--max-batch)", "gauge", s.max_batch);
    line("lopa_queue_length", "requests waiting for a slot", "gauge", s.queued);
    line("lopa_request_latency_seconds", "submit to last token, last 4096 requests", "summary", s.p50_latency_s,
         "{quantile=\"0.5\"}");
    line("lopa_request_latency_seconds", "", "", s.p99_latency_s, "{quantile=\"0.99\"}");
    line("lopa_time_to_first_token_seconds", "submit to first token, last 4096 requests", "summary", s.p50_ttft_s,
         "{quantile=\"0.5\"}");
    line("lopa_time_to_first_token_seconds", "", "", s.p99_ttft_s, "{quantile=\"0.99\"}");
    res.set_content(o.str(), "text/plain; version=0.0.4");
  }

  // The request's job, or BadRequest.
  std::shared_ptr<Job> parse(const std::string& text, bool& stream, std::string& model_name) {
    json body;
    try {
      // A request nests 3 levels at most; the limit keeps a hostile body from the recursion that a
      // deeply nested value costs later (runtime/base/json.h).
      body = parse_json(text, 16);
    } catch (const std::exception& e) {
      bad("", "malformed JSON: ", e.what());
    }
    if (!body.is_object()) bad("", "the request body must be a JSON object");
    auto job = std::make_shared<Job>();
    auto& p = job->params;

    const ServedAdapter* adapter = nullptr;
    model_name = model_id_;
    if (body.contains("model") && !body["model"].is_null()) {
      if (!body["model"].is_string()) bad("model", "'model' must be a string");
      model_name = body["model"].get<std::string>();
      if (model_name != model_id_) {
        adapter = adapters_.find(model_name);
        if (!adapter) bad("model", "unknown model '", model_name, "' (GET /v1/models lists ", model_id_, " and the adapters)");
      }
    }
    if (body.contains("adapter") && !body["adapter"].is_null()) {
      if (!body["adapter"].is_string()) bad("adapter", "'adapter' must be a string");
      const auto name = body["adapter"].get<std::string>();
      const auto* a = adapters_.find(name);
      if (!a) bad("adapter", "unknown adapter '", name, "' (GET /v1/models lists the registered ones)");
      if (adapter && adapter != a) bad("adapter", "'model' names adapter ", adapter->name, " but 'adapter' names ", name);
      adapter = a;
    }
    if (body.contains("soft_prompt") && !body["soft_prompt"].is_null()) {
      if (adapter) bad("soft_prompt", "give either 'adapter' or 'soft_prompt', not both");
      if (!body["soft_prompt"].is_string())
        bad("soft_prompt", "'soft_prompt' must be a base64 string of m × ", fm_.hidden_size(), " float32 values");
      if (body.contains("soft_prompt_dtype") && body["soft_prompt_dtype"] != "float32")
        bad("soft_prompt_dtype", "'soft_prompt_dtype' must be \"float32\"");
      try {
        job->soft_prompt = decode_soft_prompt(body["soft_prompt"].get<std::string>(), fm_.hidden_size(), "soft_prompt");
      } catch (const Error& e) {
        bad("soft_prompt", e.what());
      }
      if (body.contains("soft_prompt_shape")) {
        const auto& s = body["soft_prompt_shape"];
        if (!s.is_array() || s.size() != 2 || !s[0].is_number_integer() || !s[1].is_number_integer() ||
            s[0].get<int64_t>() != job->soft_prompt.size(1) || s[1].get<int64_t>() != fm_.hidden_size())
          bad("soft_prompt_shape", "'soft_prompt_shape' ", s.dump(), " does not match the data: [",
              job->soft_prompt.size(1), ", ", fm_.hidden_size(), "] (the FM's hidden size is ", fm_.hidden_size(), ")");
      }
    }
    job->adapter = adapter;

    if (!body.contains("prompt")) bad("prompt", "'prompt' is required");
    auto prompt = body["prompt"];
    if (prompt.is_array() && prompt.size() == 1 && (prompt[0].is_string() || prompt[0].is_array())) prompt = prompt[0];
    if (prompt.is_string()) {
      try {
        job->prompt_ids = tok_.encode(prompt.get<std::string>(), /*add_special_tokens=*/true);
      } catch (const Error& e) {
        bad("prompt", e.what());
      }
    } else if (prompt.is_array() && !prompt.empty() && std::all_of(prompt.begin(), prompt.end(), [](const json& v) { return v.is_number_integer(); })) {
      for (const auto& v : prompt) {
        const auto id = v.get<int64_t>();
        if (id < 0 || id >= fm_.vocab_size()) bad("prompt", "token id ", id, " outside the vocabulary (", fm_.vocab_size(), ")");
        job->prompt_ids.push_back(id);
      }
    } else {
      bad("prompt", "'prompt' must be a string or a list of token ids (one prompt per request)");
    }
    if (job->prompt_ids.empty()) bad("prompt", "the prompt is empty after tokenization");

    auto get_int = [&](const char* key, int64_t def, int64_t lo, int64_t hi) {
      if (!body.contains(key) || body[key].is_null()) return def;
      const auto& v = body[key];
      if (!v.is_number_integer()) bad(key, "'", key, "' must be an integer");
      const auto x = v.get<int64_t>();
      if (x < lo || x > hi) bad(key, "'", key, "' = ", x, " is outside [", lo, ", ", hi, "]");
      return x;
    };
    auto get_num = [&](const char* key, double def, double lo, double hi, bool open_lo) {
      if (!body.contains(key) || body[key].is_null()) return def;
      const auto& v = body[key];
      if (!v.is_number()) bad(key, "'", key, "' must be a number");
      const auto x = v.get<double>();
      if (!(open_lo ? x > lo : x >= lo) || x > hi) bad(key, "'", key, "' = ", x, " is outside ", open_lo ? "(" : "[", lo, ", ", hi, "]");
      return x;
    };
    p.max_tokens = get_int("max_tokens", 16, 1, max_tokens_);
    p.temperature = get_num("temperature", 1.0, 0.0, 2.0, false);
    p.top_p = get_num("top_p", 1.0, 0.0, 1.0, true);
    p.seed = static_cast<uint64_t>(get_int("seed", 0, 0, std::numeric_limits<int64_t>::max()));
    get_int("n", 1, 1, 1);
    if (body.contains("logprobs") && !body["logprobs"].is_null() && body["logprobs"] != 0)
      bad("logprobs", "'logprobs' is not supported");
    if (body.contains("echo") && body["echo"] == true) bad("echo", "'echo' is not supported");
    if (body.contains("ignore_eos")) {
      if (!body["ignore_eos"].is_boolean()) bad("ignore_eos", "'ignore_eos' must be true or false");
      p.ignore_eos = body["ignore_eos"].get<bool>();
    }
    if (body.contains("stop") && !body["stop"].is_null()) {
      const auto& s = body["stop"];
      if (s.is_string()) p.stop.push_back(s.get<std::string>());
      else if (s.is_array() && s.size() <= 4 && std::all_of(s.begin(), s.end(), [](const json& v) { return v.is_string(); }))
        for (const auto& v : s) p.stop.push_back(v.get<std::string>());
      else bad("stop", "'stop' must be a string or a list of at most 4 strings");
      for (const auto& x : p.stop)
        if (x.empty()) bad("stop", "'stop' strings must not be empty");
    }
    stream = false;
    if (body.contains("stream") && !body["stream"].is_null()) {
      if (!body["stream"].is_boolean()) bad("stream", "'stream' must be true or false");
      stream = body["stream"].get<bool>();
    }
    // Positions the request needs: KV prefix + soft prompt + prompt + completion.
    const at::Tensor sp = job->soft_prompt.defined() ? job->soft_prompt : adapter ? adapter->fixed_soft_prompt : at::Tensor();
    int64_t extra = sp.defined() ? sp.size(1) : 0;
    if (adapter) extra += adapter->prefix_length() + adapter->method->prompt_length() * (sp.defined() ? 0 : 1);
    const int64_t need = extra + static_cast<int64_t>(job->prompt_ids.size()) + p.max_tokens;
    if (need > context_)
      bad(extra + static_cast<int64_t>(job->prompt_ids.size()) >= context_ ? "prompt" : "max_tokens", "the request needs ",
          need, " positions (", extra, " soft prompt / prefix + ", job->prompt_ids.size(), " prompt + ", p.max_tokens,
          " max_tokens) but the model's context is ", context_);
    return job;
  }

  json choice(const std::string& text, const std::vector<int64_t>& ids, const json& finish) {
    return {{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}, {"token_ids", ids}};
  }
  json usage(const Job& job, size_t n) {
    const auto pt = static_cast<int64_t>(job.prompt_ids.size());
    return {{"prompt_tokens", pt}, {"completion_tokens", n}, {"total_tokens", pt + static_cast<int64_t>(n)}};
  }

  void completions(const httplib::Request& req, httplib::Response& res) {
    ++in_flight_;
    struct Leave {
      std::atomic<int64_t>& n;
      ~Leave() { --n; }
    } leave{in_flight_};
    bool stream = false;
    std::string model_name;
    std::shared_ptr<Job> job;
    try {
      job = parse(req.body, stream, model_name);
    } catch (const BadRequest& e) {
      ++bad_requests_;
      send_json(res, 400, error_body(e.message, "invalid_request_error", e.param));
      return;
    }
    if (!engine_.submit(job)) {
      send_json(res, 503, error_body("the server is shutting down", "server_shutting_down", ""));
      return;
    }
    const std::string id = "cmpl-" + std::to_string(next_id_++);
    const auto created = static_cast<int64_t>(std::time(nullptr));
    if (!stream) {
      std::unique_lock<std::mutex> lk(job->mu);
      job->cv.wait(lk, [&] { return job->done(); });
      if (job->finish_reason == "error") {
        send_json(res, 500, error_body(job->error, "server_error", ""));
        return;
      }
      auto text = engine_.completion_text(job->prompt_ids, job->tokens);
      if (job->text_end != std::string::npos) text = text.substr(0, job->text_end);
      send_json(res, 200,
                {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model_name},
                 {"choices", json::array({choice(text, job->tokens, job->finish_reason)})},
                 {"usage", usage(*job, job->tokens.size())},
                 {"lopa", {{"batch_rows_max", job->batch_rows_max.load()}}}});
      return;
    }
    // Server-sent events: one chunk per batch of new tokens, then the finish chunk and [DONE]. A
    // failed write means the client went away: the job is cancelled and its slot freed next step.
    struct State {
      size_t tokens = 0, text = 0;
      bool ended = false;
    };
    auto st = std::make_shared<State>();
    ++in_flight_;  // until the provider is released
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, job, st, id, created, model_name](size_t, httplib::DataSink& sink) {
          if (st->ended) return false;
          std::vector<int64_t> tokens;
          bool done = false;
          size_t text_end = std::string::npos;
          {
            std::unique_lock<std::mutex> lk(job->mu);
            job->cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return job->tokens.size() > st->tokens || job->done(); });
            tokens = job->tokens;
            done = job->done();
            text_end = job->text_end;
          }
          auto send = [&](const json& chunk) {
            const auto s = "data: " + chunk.dump() + "\n\n";
            return sink.write(s.data(), s.size());
          };
          auto text = engine_.completion_text(job->prompt_ids, tokens);
          if (text_end != std::string::npos) text = text.substr(0, text_end);
          const size_t upto = done ? text.size() : std::max(st->text, safe_prefix(text, job->params.stop));
          json base = {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model_name}};
          if (tokens.size() > st->tokens || upto > st->text) {
            const std::vector<int64_t> ids(tokens.begin() + static_cast<std::ptrdiff_t>(st->tokens), tokens.end());
            auto chunk = base;
            chunk["choices"] = json::array({choice(text.substr(st->text, upto - st->text), ids, nullptr)});
            st->tokens = tokens.size();
            st->text = upto;
            if (!send(chunk)) {
              job->cancelled = true;
              return false;
            }
          } else if (!sink.is_writable()) {
            job->cancelled = true;
            return false;
          }
          if (done) {
            st->ended = true;
            auto chunk = base;
            if (job->finish_reason == "error") {
              chunk = error_body(job->error, "server_error", "");
            } else {
              chunk["choices"] = json::array({choice("", {}, job->finish_reason)});
              chunk["usage"] = usage(*job, tokens.size());
            }
            const std::string tail = "data: [DONE]\n\n";
            if (!send(chunk) || !sink.write(tail.data(), tail.size())) return false;
            sink.done();
          }
          return true;
        },
        [this, job](bool) {
          // Also when the connection dropped before the end: the engine frees the slot.
          if (!job->done()) job->cancelled = true;
          --in_flight_;
        });
  }

  CausalLM& fm_;
  const Tokenizer& tok_;
  AdapterSet& adapters_;
  Engine& engine_;
  ServeOptions opt_;
  std::string model_id_;
  int64_t context_ = 0, max_tokens_ = 0;
  std::atomic<int64_t> next_id_{1}, bad_requests_{0}, in_flight_{0};
};

}  // namespace

std::pair<std::string, std::string> parse_adapter_arg(const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos) {
    auto name = std::filesystem::path(arg).lexically_normal().filename().string();
    if (name.empty()) name = std::filesystem::path(arg).lexically_normal().parent_path().filename().string();
    LOPA_CHECK(!name.empty(), "--adapter ", arg, ": cannot name it; write NAME=RUN_DIR");
    return {name, arg};
  }
  LOPA_CHECK(eq > 0 && eq + 1 < arg.size(), "--adapter ", arg, ": expected NAME=RUN_DIR");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

int serve(const ServeOptions& opt) {
  LOPA_CHECK(opt.port >= 0 && opt.port <= 65535, "--port ", opt.port, " is not a TCP port");
  MpiRuntime mpi;
  const auto pg = ProcessGroup::init(opt.tp, "cpu");
  LOPA_CHECK(pg.dp_size == 1, "lopa serve: run ", opt.tp, " ranks for --tp ", opt.tp, " (mpirun -np ", opt.tp,
             "), not ", pg.world_size, ": one server is one tensor-parallel group");
  const bool leader = pg.tp_rank == 0;
  // mpirun forwards SIGTERM to every rank: the leader drains, the followers wait for its stop.
  g_stop = false;
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  const auto tok = Tokenizer::from_dir(opt.model);
  auto fm = CausalLM::load(opt.model, pg, opt.dtype);
  AdapterSet adapters(fm, tok);
  for (const auto& [name, dir] : opt.adapters) {
    const auto& a = adapters.add(name, dir);
    if (leader) std::cerr << "lopa serve: adapter " << a.name << " = " << dir << " (" << a.cfg.method << ")" << std::endl;
  }
  Engine engine(fm, tok, adapters, opt.max_batch, pg.tp.get());
  if (!leader) {
    engine.follow();
    return 0;
  }
  Api api(fm, tok, adapters, engine, opt);

  httplib::Server svr;
  // Every waiting request holds a handler thread: enough for a full batch, a queue behind it and probes.
  const size_t threads = static_cast<size_t>(std::max<int64_t>(32, 4 * opt.max_batch));
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  api.install(svr);
  // Debian's cpp-httplib listens with a backlog of 5, compiled into the library: a burst of more
  // simultaneous connects (8 clients starting together) had SYNs dropped, and the client's kernel
  // retried them a second later (a 1 s outlier in the latencies). The listening socket is remembered
  // here and, once bound, listened on again with the system's maximum (Linux takes a second listen()).
  int listen_fd = -1;
  svr.set_socket_options([&listen_fd](int sock) {
    httplib::default_socket_options(sock);
    listen_fd = sock;
  });

  // A client gone mid-write must fail the write, not kill the server.
  std::signal(SIGPIPE, SIG_IGN);
  int port = opt.port;
  if (port == 0) {
    port = svr.bind_to_any_port(opt.host);
    LOPA_CHECK(port > 0, "lopa serve: cannot bind ", opt.host);
  } else {
    LOPA_CHECK(svr.bind_to_port(opt.host, port), "lopa serve: cannot bind ", opt.host, ":", port,
               " (in use, or not an address of this machine)");
  }
  LOPA_CHECK(listen_fd >= 0 && ::listen(listen_fd, SOMAXCONN) == 0, "lopa serve: cannot listen on ", opt.host, ":",
             port, ": ", std::strerror(errno));
  std::thread http([&] { svr.listen_after_bind(); });
  std::cout << "lopa serve: listening on http://" << opt.host << ":" << port << " (model " << opt.model << ", "
            << adapters.all().size() << " adapters, max batch " << opt.max_batch << ", tp " << pg.tp_size << ")" << std::endl;
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // SIGTERM: no new requests (503), the running ones finish and their answers go out, then exit 0.
  std::cerr << "lopa serve: stopping: finishing the requests in flight" << std::endl;
  engine.drain();
  while (api.in_flight() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  svr.stop();
  http.join();
  std::cerr << "lopa serve: stopped" << std::endl;
  return 0;
}

}  // namespace lopa::serve
