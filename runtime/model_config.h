// LlamaConfig: the Llama-family architecture read from a Hugging Face config.json —
// LlamaForCausalLM (Llama 2/3, CodeLlama, DeepSeek-Coder), MistralForCausalLM, Qwen2ForCausalLM (q/k/v
// bias), Phi3ForCausalLM (fused qkv_proj / gate_up_proj) — and the HF tensor names and shapes it implies.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lopa {

struct RopeScaling {
  std::string type;  // "" (none), "linear", "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;       // llama3
};

struct LlamaConfig {
  std::string architecture;  // "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Phi3ForCausalLM"
  std::string model_type;    // "llama", "mistral", "qwen2", "phi3"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;          // d
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // = num_attention_heads when absent
  int64_t head_dim = 0;             // = hidden_size / num_attention_heads when absent
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  double initializer_range = 0.02;
  RopeScaling rope_scaling;
  int64_t sliding_window = 0;  // Mistral/Qwen2 when enabled; 0 = full causal attention
  bool qkv_bias = false;       // q/k/v projections carry a bias (Qwen2; Llama attention_bias)
  bool o_bias = false;         // o_proj carries a bias (Llama attention_bias)
  bool mlp_bias = false;       // gate/up/down carry a bias (Llama mlp_bias)
  bool fused_qkv = false;      // Phi3: one qkv_proj
  bool fused_gate_up = false;  // Phi3: one gate_up_proj
  bool tie_word_embeddings = false;
  int64_t bos_token_id = -1;                // -1: none
  std::vector<int64_t> eos_token_ids;       // config's eos_token_id (int or list)
  int64_t pad_token_id = -1;
  std::string torch_dtype;                  // as stored ("float32", "bfloat16", ...), may be empty
  std::string source;                       // file it came from (for messages)
  std::string json;                         // the config as read (pretty), for copying to checkpoints

  // Parses and validates; throws lopa::Error "PATH: problem" (missing field, inconsistent sizes, unknown
  // architectures / model_type, unsupported rope_scaling type, hidden_act other than silu).
  static LlamaConfig from_file(const std::string& path);
  static LlamaConfig from_json_text(const std::string& text, const std::string& source);

  // The config.json to write for this config (HF keys).
  std::string to_json() const;

  // HF tensor names and shapes of a checkpoint of this config, in the order transformers writes them
  // (lm_head.weight only when embeddings are not tied; Phi3 names fused).
  std::vector<std::pair<std::string, std::vector<int64_t>>> hf_tensor_shapes() const;
  int64_t num_parameters() const;  // Σ numel of hf_tensor_shapes()
};

}  // namespace lopa
