// ModelConfig through the registry, and ConfigReader: typed config.json keys with clear errors.
#include "runtime/model/model_config.h"

#include <nlohmann/json.hpp>

#include "runtime/base/error.h"
#include "runtime/model/architecture.h"

namespace lopa {

ModelConfig ModelConfig::from_file(const std::string& path) { return load_architecture(path)->config(); }

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& source) {
  return make_architecture(text, source)->config();
}

ConfigReader::ConfigReader(const nlohmann::json& j, std::string source) : j_(j), src_(std::move(source)) {}

bool ConfigReader::has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

int64_t ConfigReader::positive_int(const char* key) const {
  LOPA_CHECK(has(key), src_, ": missing field '", key, "'");
  LOPA_CHECK(j_[key].is_number_integer(), src_, ": field '", key, "' must be an integer, got ", j_[key].dump());
  const int64_t v = j_[key].get<int64_t>();
  LOPA_CHECK(v > 0, src_, ": field '", key, "' must be positive, got ", v);
  return v;
}

int64_t ConfigReader::positive_int(const char* key, int64_t def) const { return has(key) ? positive_int(key) : def; }

int64_t ConfigReader::positive_int_any(std::initializer_list<const char*> keys) const {
  for (const char* k : keys)
    if (has(k)) return positive_int(k);
  std::string names;
  for (const char* k : keys) names += std::string(names.empty() ? "'" : " or '") + k + "'";
  fail(src_, ": missing field ", names);
}

double ConfigReader::number(const char* key, double def) const {
  if (!has(key)) return def;
  LOPA_CHECK(j_[key].is_number(), src_, ": field '", key, "' must be a number, got ", j_[key].dump());
  return j_[key].get<double>();
}

bool ConfigReader::boolean(const char* key, bool def) const {
  if (!has(key)) return def;
  LOPA_CHECK(j_[key].is_boolean(), src_, ": field '", key, "' must be true or false, got ", j_[key].dump());
  return j_[key].get<bool>();
}

std::string ConfigReader::string(const char* key, const std::string& def) const {
  if (!has(key)) return def;
  LOPA_CHECK(j_[key].is_string(), src_, ": field '", key, "' must be a string, got ", j_[key].dump());
  return j_[key].get<std::string>();
}

void ConfigReader::common(ModelConfig& c, bool tie_default) const {
  c.source = src_;
  c.json = j_.dump(2);
  c.tie_word_embeddings = boolean("tie_word_embeddings", tie_default);
  c.initializer_range = number("initializer_range", 0.02);
  auto read_id = [&](const char* key) -> int64_t {
    if (!has(key)) return -1;
    if (j_[key].is_array()) {
      if (j_[key].empty()) return -1;
      LOPA_CHECK(j_[key][0].is_number_integer(), src_, ": field '", key, "' must hold integers");
      return j_[key][0].get<int64_t>();
    }
    LOPA_CHECK(j_[key].is_number_integer(), src_, ": field '", key, "' must be an integer");
    return j_[key].get<int64_t>();
  };
  c.bos_token_id = read_id("bos_token_id");
  c.pad_token_id = read_id("pad_token_id");
  if (has("eos_token_id")) {
    if (j_["eos_token_id"].is_array()) {
      for (const auto& e : j_["eos_token_id"]) {
        LOPA_CHECK(e.is_number_integer(), src_, ": field 'eos_token_id' must hold integers");
        c.eos_token_ids.push_back(e.get<int64_t>());
      }
    } else {
      c.eos_token_ids.push_back(read_id("eos_token_id"));
    }
  }
  for (auto id : c.eos_token_ids)
    LOPA_CHECK(id >= 0 && id < c.vocab_size, src_, ": eos_token_id ", id, " outside the vocabulary (", c.vocab_size, ")");
  LOPA_CHECK(c.bos_token_id < c.vocab_size, src_, ": bos_token_id ", c.bos_token_id, " outside the vocabulary");
  c.torch_dtype = has("torch_dtype") && j_["torch_dtype"].is_string() ? j_["torch_dtype"].get<std::string>() : "";
}

void ConfigReader::heads(ModelConfig& c, const char* heads_key, const char* kv_heads_key) const {
  c.num_attention_heads = positive_int(heads_key);
  c.num_key_value_heads = kv_heads_key && has(kv_heads_key) ? positive_int(kv_heads_key) : c.num_attention_heads;
  if (has("head_dim")) {
    c.head_dim = positive_int("head_dim");
  } else {
    LOPA_CHECK(c.hidden_size % c.num_attention_heads == 0, src_, ": hidden size ", c.hidden_size,
               " is not divisible by the ", c.num_attention_heads, " attention heads (and no head_dim given)");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  LOPA_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, src_, ": num_attention_heads ", c.num_attention_heads,
             " is not a multiple of num_key_value_heads ", c.num_key_value_heads);
}

void ConfigReader::rope(ModelConfig& c) const {
  c.rope_theta = number("rope_theta", 10000.0);
  LOPA_CHECK(c.rope_theta > 0, src_, ": rope_theta must be positive");
  if (!has("rope_scaling")) return;
  const auto& r = j_["rope_scaling"];
  LOPA_CHECK(r.is_object(), src_, ": rope_scaling must be an object or null");
  auto text = [&](const char* k) {
    LOPA_CHECK(r[k].is_string(), src_, ": rope_scaling '", k, "' must be a string");
    return r[k].get<std::string>();
  };
  std::string t = r.contains("rope_type") ? text("rope_type") : r.contains("type") ? text("type") : "";
  if (t == "default") t = "";
  LOPA_CHECK(t.empty() || t == "linear" || t == "llama3", src_, ": rope_scaling type '", t,
             "' is not supported (linear, llama3)");
  c.rope_scaling.type = t;
  if (!t.empty()) {
    LOPA_CHECK(r.contains("factor") && r["factor"].is_number(), src_, ": rope_scaling '", t, "' needs a numeric 'factor'");
    c.rope_scaling.factor = r["factor"].get<double>();
    LOPA_CHECK(c.rope_scaling.factor > 0, src_, ": rope_scaling factor must be positive");
  }
  if (t == "llama3") {
    for (const char* k : {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
      LOPA_CHECK(r.contains(k) && r[k].is_number(), src_, ": rope_scaling 'llama3' needs '", k, "'");
    c.rope_scaling.low_freq_factor = r["low_freq_factor"].get<double>();
    c.rope_scaling.high_freq_factor = r["high_freq_factor"].get<double>();
    c.rope_scaling.original_max_position_embeddings = r["original_max_position_embeddings"].get<int64_t>();
    LOPA_CHECK(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor, src_,
               ": rope_scaling high_freq_factor must exceed low_freq_factor");
  }
}

}  // namespace lopa
