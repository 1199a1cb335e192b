// `lopa serve`: the FM, its registered adapters and the continuous-batching engine behind an
// OpenAI-compatible HTTP API (cpp-httplib), loopback by default. The HTTP contract is in
// docs/DESIGN.md ("lopa serve"): POST /v1/completions (JSON or server-sent events), GET /v1/models,
// GET /health, GET /metrics; per request an "adapter" (a registered run) or a "soft_prompt" (base64
// float32 m × d); bad input gets HTTP 400 with an OpenAI-style JSON error.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lopa::serve {

struct ServeOptions {
  std::string model;                                         // HF checkpoint directory
  std::vector<std::pair<std::string, std::string>> adapters;  // NAME, RUN_DIR
  std::string host = "127.0.0.1";
  int port = 8000;                                           // 0: any free port (printed)
  int64_t max_batch = 8;
  int64_t max_tokens = 0;                                    // per request at most; 0: the context length
  int tp = 1;
  at::ScalarType dtype = at::kFloat;
};

// "NAME=RUN_DIR" → {NAME, RUN_DIR}; a bare RUN_DIR is named by its last path component.
std::pair<std::string, std::string> parse_adapter_arg(const std::string& arg);

// Loads everything, prints "lopa serve: listening on http://HOST:PORT" (flushed) once the port is
// bound, and serves until SIGTERM or SIGINT: then it stops taking requests (503), finishes the ones in
// flight, and returns 0. Under mpirun with tp > 1 rank 0 serves HTTP and the others follow its steps.
int serve(const ServeOptions& opt);

}  // namespace lopa::serve
