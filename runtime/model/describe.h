// A checkpoint directory checked against its config.json's architecture: every tensor the config
// implies present with its shape (names as the architecture spells them, or without one of its
// optional prefixes), and a summary for `lopa info`.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "runtime/io/checkpoint.h"
#include "runtime/model/architecture.h"

namespace lopa {

// The checkpoint's name for the tensor the architecture calls `name` (hub GPT-2 stores "h.0.attn…"
// for "transformer.h.0.attn…"); `name` itself when neither is stored (Checkpoint::info then names it).
std::string stored_name(const Checkpoint& ck, const ModelSpec& spec, const std::string& name);
// Throws "FILE: tensor 'X' has shape [..] but DIR/config.json implies [..]" (or names a missing tensor).
void check_tensors(const Checkpoint& ck, const ModelSpec& spec, const ModelConfig& c);

struct CheckpointSummary {
  ModelConfig config;
  int64_t num_parameters = 0;            // tied embeddings counted once
  std::map<std::string, int64_t> dtypes;  // stored dtype code → elements
  std::string positions;                 // e.g. "rotary (NeoX) on 32 of 80 dims, theta 10000" or "learned, 1024"
  std::string kind;                      // e.g. "encoder (bidirectional attention, masked-LM head), pooling first"
};
// DIR's config.json is read first: an unsupported architecture is named before any weights file is opened.
CheckpointSummary describe_checkpoint(const std::string& dir);

}  // namespace lopa
