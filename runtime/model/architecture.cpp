// The tensor table derived from an architecture's spec, shared by loading, init-model and info; the
// defaults of positions and pooling.
#include "runtime/model/architecture.h"

#include <algorithm>
#include <map>

#include "runtime/model/attention.h"

namespace lopa {

std::vector<std::string> Architecture::lora_modules() const {
  std::vector<std::string> out;
  const auto s = spec();
  if (s.layers.empty()) return out;
  for (const auto& p : s.layers[0].projections) {
    const auto dot = p.module.rfind('.');
    auto n = p.module.substr(dot == std::string::npos ? 0 : dot + 1);
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::None: return "none";
    case Pooling::First: return "first";
    case Pooling::Mean: return "mean";
    case Pooling::Last: return "last";
  }
  return "?";
}

at::Tensor Architecture::position_ids(const at::Tensor& ids) const {
  return embeds_position_ids(ids.size(0), ids.size(1), ids.device());
}

at::Tensor Architecture::embeds_position_ids(int64_t B, int64_t T, c10::Device device) const {
  return at::arange(T, at::TensorOptions().dtype(at::kLong).device(device)).unsqueeze(0).expand({B, T});
}

Pooling Architecture::pooling() const { return spec().causal ? Pooling::Last : Pooling::None; }

ProjectionSpec column_parallel(Role role, Shard shard, int64_t in, int64_t out, std::string module, bool bias,
                               int64_t row_offset) {
  ProjectionSpec p;
  p.role = role;
  p.shard = shard;
  p.in = in;
  p.out = out;
  p.module = std::move(module);
  p.has_bias = bias;
  p.row_offset = row_offset;
  return p;
}

ProjectionSpec row_parallel(Role role, Shard shard, int64_t in, int64_t out, std::string module, bool bias) {
  ProjectionSpec p = column_parallel(role, shard, in, out, std::move(module), bias);
  p.row_parallel = true;
  return p;
}

at::Tensor parallel_block(const Block& b, const at::Tensor& x, Attention& attention, Communicator& tp, Activation act) {
  auto h = b.norms[0].forward(x);
  const auto hq = attention.queries(h);
  auto a = b[Role::O].forward(
      attention(b[Role::Q].forward(hq, tp), b[Role::K].forward(h, tp), b[Role::V].forward(h, tp)), tp);
  auto m = b[Role::FcOut].forward(activate(act, b[Role::FcIn].forward(hq, tp)), tp);
  return a + m + attention.queries(x);
}

std::vector<TensorSpec> tensor_table(const ModelSpec& s, const ModelConfig& c) {
  std::vector<TensorSpec> out;
  const int64_t d = c.hidden_size, V = c.vocab_size;
  auto norm = [&](const std::string& m) {
    out.push_back({m + ".weight", {d}, TensorSpec::NormWeight});
    if (s.norm == NormKind::Layer) out.push_back({m + ".bias", {d}, TensorSpec::NormBias});
  };
  out.push_back({s.embed + ".weight", {V, d}, TensorSpec::Embedding});
  if (!s.position_embed.empty()) out.push_back({s.position_embed + ".weight", {c.max_position_embeddings, d}, TensorSpec::Embedding});
  if (!s.token_type_embed.empty()) out.push_back({s.token_type_embed + ".weight", {s.token_types, d}, TensorSpec::Embedding});
  if (!s.embed_norm.empty()) norm(s.embed_norm);
  for (const auto& L : s.layers) {
    for (const auto& n : L.norms) norm(n);
    // A module's stored rows: the sum of its parts' outputs (fused q | k | v, gate | up).
    std::vector<std::string> order;
    std::map<std::string, std::pair<int64_t, const ProjectionSpec*>> modules;
    for (const auto& p : L.projections) {
      auto [it, fresh] = modules.try_emplace(p.module, 0, &p);
      if (fresh) order.push_back(p.module);
      it->second.first += p.out;
    }
    for (const auto& m : order) {
      const auto [rows, p] = modules[m];
      out.push_back({m + ".weight", p->transposed ? std::vector<int64_t>{p->in, rows} : std::vector<int64_t>{rows, p->in},
                     TensorSpec::Matrix});
      if (p->has_bias) out.push_back({m + ".bias", {rows}, TensorSpec::Bias});
    }
  }
  if (!s.final_norm.empty()) norm(s.final_norm);
  if (!s.has_lm_head) return out;
  if (!s.head_dense.empty()) {
    out.push_back({s.head_dense + ".weight", {d, d}, TensorSpec::Matrix});
    out.push_back({s.head_dense + ".bias", {d}, TensorSpec::Bias});
    norm(s.head_norm);
  }
  if (!s.lm_head.empty()) {
    out.push_back({s.lm_head + ".weight", {V, d}, TensorSpec::Matrix});
    if (s.lm_head_bias) out.push_back({s.lm_head + ".bias", {V}, TensorSpec::Bias});
  }
  if (!s.output_bias.empty()) out.push_back({s.output_bias, {V}, TensorSpec::Bias});
  return out;
}

int64_t num_parameters(const std::vector<TensorSpec>& table) {
  int64_t n = 0;
  for (const auto& t : table) {
    int64_t k = 1;
    for (auto s : t.shape) k *= s;
    n += k;
  }
  return n;
}

}  // namespace lopa
