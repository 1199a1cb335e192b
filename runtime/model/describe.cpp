#include "runtime/model/describe.h"

#include "runtime/base/error.h"

namespace lopa {

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

std::string stored_name(const Checkpoint& ck, const ModelSpec& spec, const std::string& name) {
  auto find = [&](const std::string& n) -> std::string {
    if (ck.contains(n)) return n;
    for (const auto& p : spec.optional_prefixes) {
      if (n.compare(0, p.size(), p) == 0 && ck.contains(n.substr(p.size()))) return n.substr(p.size());
      if (ck.contains(p + n)) return p + n;  // a base model's name in a checkpoint of a head model
    }
    return "";
  };
  if (auto n = find(name); !n.empty()) return n;
  // TensorFlow-era names that transformers renames on load (bert-base-uncased: LayerNorm.gamma / beta).
  for (const auto& [now, old] : {std::pair<const char*, const char*>{"LayerNorm.weight", "LayerNorm.gamma"},
                                 std::pair<const char*, const char*>{"LayerNorm.bias", "LayerNorm.beta"}}) {
    const std::string tail(now);
    if (name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0)
      if (auto n = find(name.substr(0, name.size() - tail.size()) + old); !n.empty()) return n;
  }
  return name;
}

void check_tensors(const Checkpoint& ck, const ModelSpec& spec, const ModelConfig& c) {
  for (const auto& ts : tensor_table(spec, c)) {
    const auto name = stored_name(ck, spec, ts.name);
    const auto& info = ck.info(name);
    LOPA_CHECK(info.shape == ts.shape, ck.file_of(name), ": tensor '", name, "' has shape ", shape_str(info.shape),
               " but ", ck.config_path(), " implies ", shape_str(ts.shape));
  }
}

CheckpointSummary describe_checkpoint(const std::string& dir) {
  const auto arch = load_architecture(dir + "/config.json");
  const auto ck = Checkpoint::open(dir);
  const auto spec = arch->spec();
  CheckpointSummary s;
  s.config = arch->config();
  check_tensors(ck, spec, s.config);
  const auto table = tensor_table(spec, s.config);
  s.num_parameters = num_parameters(table);
  for (const auto& ts : table) {
    const auto& info = ck.info(stored_name(ck, spec, ts.name));
    s.dtypes[info.dtype_code] += info.numel();
  }
  const auto& c = s.config;
  s.kind = std::string(spec.causal ? "decoder (causal attention, " : "encoder (bidirectional attention, ") +
           (!spec.has_lm_head ? "no LM head" : spec.causal ? "LM head" : "masked-LM head") + "), pooling " +
           pooling_name(arch->pooling());
  if (c.rotary == RotaryStyle::None) {
    s.positions = "learned, " + std::to_string(c.max_position_embeddings);
  } else {
    s.positions = std::string("rotary (") + (c.rotary == RotaryStyle::NeoX ? "NeoX" : "GPT-J interleaved") + ") on " +
                  std::to_string(c.rotary_dim) + " of " + std::to_string(c.head_dim) + " dims, theta " +
                  std::to_string(c.rope_theta);
    if (!c.rope_scaling.type.empty())
      s.positions += ", scaling " + c.rope_scaling.type + " x" + std::to_string(c.rope_scaling.factor);
  }
  return s;
}

}  // namespace lopa
