// Model inputs as JSON lines, the way a transformers user passes them to model(**inputs): one object
// per line, {"ids": [...]} or {"text": "..."} (tokenized with the model's tokenizer, special tokens
// added as tokenizer(text) does), optionally with "attention_mask": [0/1 per id]. Used by
// `lopa logits` (and the encoder commands that take the same input).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lopa {

class Tokenizer;
class CausalLM;
class Encoder;

struct ModelInput {
  std::vector<int64_t> ids;
  std::vector<int64_t> attention_mask;  // empty: all real
};

// Reads FILE; `tokenizer` may be null when every line has "ids". Throws "FILE:LINE: problem" for
// malformed JSON, an unknown key, a mask of the wrong length or values, ids outside [0, vocab_size),
// or a "text" line without a tokenizer.
std::vector<ModelInput> read_model_inputs(const std::string& path, const Tokenizer* tokenizer, int64_t vocab_size);

// Full-vocabulary float32 logits of each input (run as a batch of one, exactly as given), handed to
// `emit` as one JSON line {"logits": [[V floats] per position]}. Collective under tp: every rank runs
// it, and `emit` is called on the root only.
void write_logits(const CausalLM& model, const std::vector<ModelInput>& inputs,
                  const std::function<void(const std::string&)>& emit);

// The pooled embedding of each input (a batch of one, exactly as given; the encoder's pooling) handed to `emit`
// as one JSON line {"embedding": [H floats]}. Collective under tp, `emit` called on the root only.
void write_embeddings(const Encoder& encoder, const std::vector<ModelInput>& inputs,
                      const std::function<void(const std::string&)>& emit);

}  // namespace lopa
