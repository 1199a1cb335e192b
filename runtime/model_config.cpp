// config.json → LlamaConfig with validation; HF tensor layout of each architecture.
#include "runtime/model_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/error.h"

namespace lopa {

namespace {
using Json = nlohmann::json;

struct Arch {
  const char* architecture;
  const char* model_type;
};
const Arch kArchs[] = {{"LlamaForCausalLM", "llama"},
                       {"MistralForCausalLM", "mistral"},
                       {"Qwen2ForCausalLM", "qwen2"},
                       {"Phi3ForCausalLM", "phi3"}};

int64_t need_int(const Json& j, const char* key, const std::string& src) {
  LOPA_CHECK(j.contains(key) && !j[key].is_null(), src, ": missing field '", key, "'");
  LOPA_CHECK(j[key].is_number_integer(), src, ": field '", key, "' must be an integer, got ", j[key].dump());
  const int64_t v = j[key].get<int64_t>();
  LOPA_CHECK(v > 0, src, ": field '", key, "' must be positive, got ", v);
  return v;
}
double opt_num(const Json& j, const char* key, double def, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return def;
  LOPA_CHECK(j[key].is_number(), src, ": field '", key, "' must be a number, got ", j[key].dump());
  return j[key].get<double>();
}
bool opt_bool(const Json& j, const char* key, bool def, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return def;
  LOPA_CHECK(j[key].is_boolean(), src, ": field '", key, "' must be true or false, got ", j[key].dump());
  return j[key].get<bool>();
}
}  // namespace

LlamaConfig LlamaConfig::from_file(const std::string& path) {
  std::ifstream in(path);
  LOPA_CHECK(in, path, ": cannot open model config");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_text(ss.str(), path);
}

LlamaConfig LlamaConfig::from_json_text(const std::string& text, const std::string& src) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    fail(src, ": not valid JSON (", e.what(), ")");
  }
  LOPA_CHECK(j.is_object(), src, ": not a JSON object");
  LlamaConfig c;
  c.source = src;
  c.json = j.dump(2);

  std::string arch;
  if (j.contains("architectures") && !j["architectures"].is_null()) {
    LOPA_CHECK(j["architectures"].is_array() && j["architectures"].size() == 1 && j["architectures"][0].is_string(),
               src, ": 'architectures' must be a list of one name, got ", j["architectures"].dump());
    arch = j["architectures"][0].get<std::string>();
  }
  std::string type;
  if (j.contains("model_type") && j["model_type"].is_string()) type = j["model_type"].get<std::string>();
  LOPA_CHECK(!arch.empty() || !type.empty(), src, ": missing field 'architectures' (and 'model_type')");
  const Arch* found = nullptr;
  for (const auto& a : kArchs)
    if ((!arch.empty() && arch == a.architecture) || (arch.empty() && type == a.model_type)) found = &a;
  if (!found) {
    std::string known;
    for (const auto& a : kArchs) known += std::string(known.empty() ? "" : ", ") + a.architecture;
    fail(src, ": unsupported architecture '", arch.empty() ? type : arch, "' (supported: ", known, ")");
  }
  LOPA_CHECK(type.empty() || type == found->model_type, src, ": model_type '", type, "' does not match architecture '",
             found->architecture, "' (expected '", found->model_type, "')");
  c.architecture = found->architecture;
  c.model_type = found->model_type;

  c.vocab_size = need_int(j, "vocab_size", src);
  c.hidden_size = need_int(j, "hidden_size", src);
  c.intermediate_size = need_int(j, "intermediate_size", src);
  c.num_hidden_layers = need_int(j, "num_hidden_layers", src);
  c.num_attention_heads = need_int(j, "num_attention_heads", src);
  c.num_key_value_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                              ? need_int(j, "num_key_value_heads", src)
                              : c.num_attention_heads;
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.head_dim = need_int(j, "head_dim", src);
  } else {
    LOPA_CHECK(c.hidden_size % c.num_attention_heads == 0, src, ": hidden_size ", c.hidden_size,
               " is not divisible by num_attention_heads ", c.num_attention_heads, " (and no head_dim given)");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  LOPA_CHECK(c.head_dim % 2 == 0, src, ": head_dim ", c.head_dim, " must be even for rotary embeddings");
  LOPA_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, src, ": num_attention_heads ", c.num_attention_heads,
             " is not a multiple of num_key_value_heads ", c.num_key_value_heads);
  if (j.contains("max_position_embeddings") && !j["max_position_embeddings"].is_null())
    c.max_position_embeddings = need_int(j, "max_position_embeddings", src);
  c.rms_norm_eps = opt_num(j, "rms_norm_eps", c.model_type == "llama" ? 1e-6 : c.rms_norm_eps, src);
  c.rope_theta = opt_num(j, "rope_theta", 10000.0, src);
  c.initializer_range = opt_num(j, "initializer_range", 0.02, src);
  LOPA_CHECK(c.rms_norm_eps > 0 && c.rope_theta > 0, src, ": rms_norm_eps and rope_theta must be positive");
  if (j.contains("hidden_act") && !j["hidden_act"].is_null()) {
    const auto act = j["hidden_act"].get<std::string>();
    LOPA_CHECK(act == "silu" || act == "swish", src, ": hidden_act '", act, "' is not supported (only silu)");
  }
  if (j.contains("partial_rotary_factor") && !j["partial_rotary_factor"].is_null())
    LOPA_CHECK(j["partial_rotary_factor"].get<double>() == 1.0, src, ": partial_rotary_factor != 1 is not supported");

  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const auto& r = j["rope_scaling"];
    LOPA_CHECK(r.is_object(), src, ": rope_scaling must be an object or null");
    std::string t = r.contains("rope_type") ? r["rope_type"].get<std::string>()
                    : r.contains("type")    ? r["type"].get<std::string>()
                                            : "";
    if (t == "default") t = "";
    LOPA_CHECK(t.empty() || t == "linear" || t == "llama3", src, ": rope_scaling type '", t,
               "' is not supported (linear, llama3)");
    c.rope_scaling.type = t;
    if (!t.empty()) {
      LOPA_CHECK(r.contains("factor") && r["factor"].is_number(), src, ": rope_scaling '", t, "' needs a numeric 'factor'");
      c.rope_scaling.factor = r["factor"].get<double>();
      LOPA_CHECK(c.rope_scaling.factor > 0, src, ": rope_scaling factor must be positive");
    }
    if (t == "llama3") {
      for (const char* k : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
        LOPA_CHECK(r.contains(k) && r[k].is_number(), src, ": rope_scaling 'llama3' needs '", k, "'");
      c.rope_scaling.low_freq_factor = r["low_freq_factor"].get<double>();
      c.rope_scaling.high_freq_factor = r["high_freq_factor"].get<double>();
      c.rope_scaling.original_max_position_embeddings = r["original_max_position_embeddings"].get<int64_t>();
      LOPA_CHECK(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor, src,
                 ": rope_scaling high_freq_factor must exceed low_freq_factor");
    }
  }

  const bool attention_bias = opt_bool(j, "attention_bias", false, src);
  c.mlp_bias = opt_bool(j, "mlp_bias", false, src);
  if (c.model_type == "qwen2") {
    c.qkv_bias = true;
    c.o_bias = false;
  } else if (c.model_type == "llama") {
    c.qkv_bias = c.o_bias = attention_bias;
  }
  if (c.model_type == "phi3") c.fused_qkv = c.fused_gate_up = true;
  if (c.model_type == "mistral" || (c.model_type == "qwen2" && opt_bool(j, "use_sliding_window", false, src))) {
    if (j.contains("sliding_window") && j["sliding_window"].is_number_integer())
      c.sliding_window = j["sliding_window"].get<int64_t>();
  }
  c.tie_word_embeddings = opt_bool(j, "tie_word_embeddings", c.model_type == "qwen2" ? false : false, src);

  auto read_id = [&](const char* key) -> int64_t {
    if (!j.contains(key) || j[key].is_null()) return -1;
    if (j[key].is_array()) return j[key].empty() ? -1 : j[key][0].get<int64_t>();
    LOPA_CHECK(j[key].is_number_integer(), src, ": field '", key, "' must be an integer");
    return j[key].get<int64_t>();
  };
  c.bos_token_id = read_id("bos_token_id");
  c.pad_token_id = read_id("pad_token_id");
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    if (j["eos_token_id"].is_array())
      for (const auto& e : j["eos_token_id"]) c.eos_token_ids.push_back(e.get<int64_t>());
    else
      c.eos_token_ids.push_back(read_id("eos_token_id"));
  }
  for (auto id : c.eos_token_ids)
    LOPA_CHECK(id >= 0 && id < c.vocab_size, src, ": eos_token_id ", id, " outside the vocabulary (", c.vocab_size, ")");
  LOPA_CHECK(c.bos_token_id < c.vocab_size, src, ": bos_token_id ", c.bos_token_id, " outside the vocabulary");
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"].get<std::string>();
  return c;
}

std::string LlamaConfig::to_json() const {
  nlohmann::ordered_json j;
  j["architectures"] = {architecture};
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["initializer_range"] = initializer_range;
  j["hidden_act"] = "silu";
  if (rope_scaling.type.empty()) {
    j["rope_scaling"] = nullptr;
  } else {
    nlohmann::ordered_json r;
    r["rope_type"] = rope_scaling.type;
    r["factor"] = rope_scaling.factor;
    if (rope_scaling.type == "llama3") {
      r["low_freq_factor"] = rope_scaling.low_freq_factor;
      r["high_freq_factor"] = rope_scaling.high_freq_factor;
      r["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
    }
    j["rope_scaling"] = r;
  }
  if (model_type == "llama") {
    j["attention_bias"] = qkv_bias;
    j["mlp_bias"] = mlp_bias;
  }
  if (sliding_window > 0) j["sliding_window"] = sliding_window;
  if (model_type == "qwen2") j["use_sliding_window"] = sliding_window > 0;
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  else if (!eos_token_ids.empty()) j["eos_token_id"] = eos_token_ids;
  if (pad_token_id >= 0) j["pad_token_id"] = pad_token_id;
  j["torch_dtype"] = torch_dtype.empty() ? "float32" : torch_dtype;
  return j.dump(2);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> LlamaConfig::hf_tensor_shapes() const {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  const int64_t d = hidden_size, q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim,
                f = intermediate_size;
  out.push_back({"model.embed_tokens.weight", {vocab_size, d}});
  for (int64_t l = 0; l < num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.push_back({p + "input_layernorm.weight", {d}});
    if (fused_qkv) {
      out.push_back({p + "self_attn.qkv_proj.weight", {q + 2 * kv, d}});
    } else {
      out.push_back({p + "self_attn.q_proj.weight", {q, d}});
      out.push_back({p + "self_attn.k_proj.weight", {kv, d}});
      out.push_back({p + "self_attn.v_proj.weight", {kv, d}});
      if (qkv_bias) {
        out.push_back({p + "self_attn.q_proj.bias", {q}});
        out.push_back({p + "self_attn.k_proj.bias", {kv}});
        out.push_back({p + "self_attn.v_proj.bias", {kv}});
      }
    }
    out.push_back({p + "self_attn.o_proj.weight", {d, q}});
    if (o_bias) out.push_back({p + "self_attn.o_proj.bias", {d}});
    out.push_back({p + "post_attention_layernorm.weight", {d}});
    if (fused_gate_up) {
      out.push_back({p + "mlp.gate_up_proj.weight", {2 * f, d}});
    } else {
      out.push_back({p + "mlp.gate_proj.weight", {f, d}});
      out.push_back({p + "mlp.up_proj.weight", {f, d}});
      if (mlp_bias) {
        out.push_back({p + "mlp.gate_proj.bias", {f}});
        out.push_back({p + "mlp.up_proj.bias", {f}});
      }
    }
    out.push_back({p + "mlp.down_proj.weight", {d, f}});
    if (mlp_bias) out.push_back({p + "mlp.down_proj.bias", {d}});
  }
  out.push_back({"model.norm.weight", {d}});
  if (!tie_word_embeddings) out.push_back({"lm_head.weight", {vocab_size, d}});
  return out;
}

int64_t LlamaConfig::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, shape] : hf_tensor_shapes()) {
    int64_t k = 1;
    for (auto s : shape) k *= s;
    n += k;
  }
  return n;
}

}  // namespace lopa
