#include "runtime/model/attention.h"

#include <cmath>
#include <limits>

#include "runtime/base/linear.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/rotary.h"

namespace lopa {

Attention::Attention(const AttentionShape& shape, const at::Tensor& mask_all, bool all_real,
                     const at::Tensor& positions, const at::Tensor& inv_freq, at::ScalarType dtype, KVCache* cache,
                     int64_t T)
    : s_(shape), cache_(cache) {
  const int64_t B = mask_all.size(0), K = mask_all.size(1), past = K - T;
  const int64_t P = cache ? cache->prefix_length() : 0;
  const auto dev = mask_all.device();
  const auto lopt = at::TensorOptions().dtype(at::kLong).device(dev);
  // Additive bias B × 1 × T × (P + K): causal, padding, sliding window; the prefix always visible.
  // A single causal query of an all-real batch sees everything: no bias.
  if (!(T == 1 && all_real && s_.sliding_window == 0) && (s_.causal || !all_real)) {
    auto kidx = at::arange(K, lopt).view({1, 1, 1, K});
    auto qidx = (at::arange(T, lopt) + past).view({1, 1, T, 1});
    at::Tensor allowed = s_.causal ? (kidx <= qidx) : at::ones({1, 1, T, K}, lopt.dtype(at::kBool));
    if (s_.sliding_window > 0) allowed = at::logical_and(allowed, kidx > qidx - s_.sliding_window);
    if (!all_real) allowed = at::logical_and(allowed, mask_all.view({B, 1, 1, K}) != 0);
    allowed = allowed.expand({B, 1, T, K});
    bias_ = at::zeros({B, 1, T, K}, at::TensorOptions().dtype(at::kFloat).device(dev))
                .masked_fill_(at::logical_not(allowed), std::numeric_limits<float>::lowest());
    if (P > 0) bias_ = at::cat({at::zeros({B, 1, T, P}, bias_.options()), bias_}, 3);
  }
  if (s_.rotary != RotaryStyle::None) {
    // Angles in float32 as HF, then cast: B × 1 × T × (rotary_dim or rotary_dim/2).
    auto freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq.view({1, 1, -1});
    auto emb = s_.rotary == RotaryStyle::NeoX ? at::cat({freqs, freqs}, -1) : freqs;
    // CodeGen keeps its sin/cos in float32 and so rotates (and scores) in float32.
    const auto table_dtype = s_.rotary == RotaryStyle::GptJ ? at::kFloat : dtype;
    cos_ = emb.cos().to(table_dtype).unsqueeze(1);
    sin_ = emb.sin().to(table_dtype).unsqueeze(1);
  }
}

at::Tensor Attention::operator()(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in) const {
  const int64_t B = q_in.size(0), Tq = q_in.size(1), T = k_in.size(1), Hl = s_.heads_local, KVl = s_.kv_heads_local,
                hd = s_.head_dim, G = Hl / KVl;
  const auto dt = q_in.scalar_type();
  // The queries are the last Tq positions: their rows of the rotary tables and of the mask.
  auto last_rows = [&](const at::Tensor& t) { return !t.defined() || Tq == T ? t : t.narrow(2, T - Tq, Tq); };
  auto q = q_in.view({B, Tq, Hl, hd}).transpose(1, 2);  // B × Hl × Tq × hd
  auto k = k_in.view({B, T, KVl, hd}).transpose(1, 2);   // B × KVl × T × hd
  auto v = v_in.view({B, T, KVl, hd}).transpose(1, 2);
  q = rotate_heads(q, s_.rotary, s_.rotary_dim, last_rows(cos_), last_rows(sin_)).to(dt);
  k = rotate_heads(k, s_.rotary, s_.rotary_dim, cos_, sin_).to(dt);
  at::Tensor keys = k, values = v;
  // A bidirectional encoder's cache holds a prefix only: its own keys are never reused, so not stored.
  if (cache_) std::tie(keys, values) = s_.causal ? cache_->append(layer_, k, v) : cache_->attend(layer_, k, v);
  const int64_t S = keys.size(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  auto qg = q.reshape({B, KVl, G * Tq, hd});
  OneThreadIfSmall guard(2 * B * Hl * Tq * S * hd);  // QKᵀ and PV
  const bool up = s_.fp32_scores && dt != at::kFloat;
  auto scores = at::matmul(up ? qg.to(at::kFloat) : qg, (up ? keys.to(at::kFloat) : keys).transpose(2, 3))
                    .mul_(scale);  // B × KVl × (G·Tq) × S
  const auto bias = last_rows(bias_);
  if (bias.defined() || scores.scalar_type() != at::kFloat) {
    auto sc = scores.to(at::kFloat).view({B, KVl, G, Tq, S});
    if (bias.defined()) sc = sc + bias.unsqueeze(1);
    scores = sc.view({B, KVl, G * Tq, S});
  }
  auto probs = at::softmax(scores, -1).to(dt);
  return at::matmul(probs, values)  // B × KVl × (G·Tq) × hd
      .view({B, Hl, Tq, hd})
      .transpose(1, 2)
      .reshape({B, Tq, Hl * hd});
}

}  // namespace lopa
