// Encoder: hidden states with the family's positions, pooling rules, masked-LM logits.
#include "runtime/model/encoder.h"

#include "runtime/base/error.h"
#include "runtime/io/dtype.h"

namespace lopa {

std::optional<Pooling> parse_pooling(const std::string& name, const std::string& source) {
  if (name == "auto") return std::nullopt;
  for (Pooling p : {Pooling::First, Pooling::Mean, Pooling::Last})
    if (name == pooling_name(p)) return p;
  fail(source, ": unknown pooling '", name, "' (auto, first, mean, last)");
}

Pooling resolve_pooling(const Architecture& arch, std::optional<Pooling> requested) {
  if (requested) {
    LOPA_CHECK(*requested != Pooling::None, "pooling 'none' cannot embed a sequence (first, mean, last)");
    return *requested;
  }
  const Pooling p = arch.pooling();
  LOPA_CHECK(p != Pooling::None, arch.config().source, ": ", arch.config().architecture,
             " has no pooling rule of its own; choose one (--pooling first, mean or last)");
  return p;
}

at::Tensor last_real_positions(const at::Tensor& mask) {
  return (at::arange(mask.size(1), mask.options()).unsqueeze(0) * (mask != 0)).amax(1);
}

at::Tensor pool_hidden(const at::Tensor& hidden, const at::Tensor& mask, Pooling p) {
  LOPA_CHECK(hidden.dim() == 3, "pool_hidden: hidden ", shape_string(hidden.sizes()), " must be B × T × d");
  const int64_t B = hidden.size(0), T = hidden.size(1);
  at::Tensor m = mask.defined() ? mask.to(hidden.device(), at::kLong)
                                : at::ones({B, T}, at::TensorOptions().dtype(at::kLong).device(hidden.device()));
  LOPA_CHECK(m.dim() == 2 && m.size(0) == B && m.size(1) == T, "pool_hidden: mask ", shape_string(m.sizes()),
             " must be ", B, " × ", T);
  switch (p) {
    case Pooling::First: return hidden.select(1, 0);
    case Pooling::Mean: {
      // CodeSage's pooler_output: (h · mask).sum(1) / mask.sum(1), then F.normalize(p = 2, eps = 1e-12).
      auto mean = (hidden * m.unsqueeze(-1)).sum(1) / m.sum(1, /*keepdim=*/true);
      return mean / mean.norm(2, -1, /*keepdim=*/true).clamp_min(1e-12);
    }
    case Pooling::Last: {
      auto idx = last_real_positions(m);
      return hidden.gather(1, idx.view({B, 1, 1}).expand({B, 1, hidden.size(2)})).squeeze(1);
    }
    case Pooling::None: break;
  }
  fail("pool_hidden: no pooling rule given");
}

Encoder Encoder::load(const std::string& dir, const ProcessGroup& pg, at::ScalarType dtype,
                      std::optional<Pooling> pooling) {
  auto m = CausalLM::load(dir, pg, dtype);
  const Pooling p = resolve_pooling(m.architecture(), pooling);
  return Encoder(std::move(m), p);
}

bool Encoder::bidirectional() const { return !model_.architecture().spec().causal; }

bool Encoder::has_lm_head() const { return model_.architecture().spec().has_lm_head; }

at::Tensor Encoder::hidden_states(const at::Tensor& ids, const at::Tensor& mask) const {
  LOPA_CHECK(ids.dim() == 2, "Encoder::hidden_states: ids ", shape_string(ids.sizes()), " must be B × T");
  auto x = ids.to(model_.device(), at::kLong);
  return model_.forward(model_.embed(x), mask, nullptr, model_.architecture().position_ids(x));
}

at::Tensor Encoder::hidden_states_from_embeds(const at::Tensor& inputs_embeds, const at::Tensor& mask) const {
  LOPA_CHECK(inputs_embeds.dim() == 3, "Encoder::hidden_states_from_embeds: inputs_embeds ",
             shape_string(inputs_embeds.sizes()), " must be B × T × d");
  auto pos = model_.architecture().embeds_position_ids(inputs_embeds.size(0), inputs_embeds.size(1), model_.device());
  return model_.forward(inputs_embeds, mask, nullptr, pos);
}

at::Tensor Encoder::embed(const at::Tensor& ids, const at::Tensor& mask) const {
  return pool(hidden_states(ids, mask), mask);
}

}  // namespace lopa
