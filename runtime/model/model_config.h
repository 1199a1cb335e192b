// ModelConfig: what every part of lopa outside an architecture's own file needs to know about a
// decoder read from a Hugging Face config.json — its sizes, its attention geometry, its position
// scheme and its special tokens. Each architecture (runtime/model/arch/) fills it from its own keys;
// ConfigReader gives those files one way to read a key with a clear error.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lopa {

struct RopeScaling {
  std::string type;  // "" (none), "linear", "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;       // llama3
};

// How positions enter attention.
enum class RotaryStyle {
  None,  // no rotary: learned absolute positions (GPT-2)
  NeoX,  // rotate_half on the two halves of the first rotary_dim dims (Llama, Phi)
  GptJ,  // rotate_every_two on interleaved pairs of the first rotary_dim dims (CodeGen, GPT-J)
};

struct ModelConfig {
  std::string architecture;  // HF class, e.g. "LlamaForCausalLM", "GPT2LMHeadModel"
  std::string model_type;    // "llama", "gpt2", "codegen", "phi", ...
  int64_t vocab_size = 0;    // rows of the embedding / LM head (may exceed the tokenizer's vocabulary)
  int64_t hidden_size = 0;   // d
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 2048;
  double initializer_range = 0.02;
  RotaryStyle rotary = RotaryStyle::NeoX;
  int64_t rotary_dim = 0;  // dims of each head that rotate (head_dim unless partial); 0 without rotary
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t sliding_window = 0;  // 0 = full causal attention
  bool tie_word_embeddings = false;
  int64_t bos_token_id = -1;           // -1: none
  std::vector<int64_t> eos_token_ids;  // config's eos_token_id (int or list)
  int64_t pad_token_id = -1;
  std::string torch_dtype;  // as stored ("float32", "bfloat16", ...), may be empty
  std::string source;       // file it came from (for messages)
  std::string json;         // the config as read (pretty), for copying to checkpoints

  // config.json → the architecture's own parse (registry): throws "PATH: problem", naming the
  // supported architectures for an unknown one.
  static ModelConfig from_file(const std::string& path);
  static ModelConfig from_json_text(const std::string& text, const std::string& source);
};

// Reads typed keys of one config.json with errors that name the file and the key.
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::string source);
  bool has(const char* key) const;                                 // present and not null
  int64_t positive_int(const char* key) const;                     // required, > 0
  int64_t positive_int(const char* key, int64_t def) const;        // optional
  int64_t positive_int_any(std::initializer_list<const char*> keys) const;  // first present of aliases
  double number(const char* key, double def) const;
  bool boolean(const char* key, bool def) const;
  std::string string(const char* key, const std::string& def) const;
  const std::string& source() const { return src_; }
  const nlohmann::json& json() const { return j_; }
  // The fields every family shares: token ids, tie_word_embeddings (default `tie_default`),
  // torch_dtype, initializer_range, and the config text itself.
  void common(ModelConfig& c, bool tie_default) const;
  // rope_theta and rope_scaling (none, linear, llama3) as transformers reads them.
  void rope(ModelConfig& c) const;
  // Attention geometry from c.hidden_size and heads (head_dim given or d / heads; GQA checked).
  void heads(ModelConfig& c, const char* heads_key, const char* kv_heads_key) const;

 private:
  const nlohmann::json& j_;
  std::string src_;
};

}  // namespace lopa
