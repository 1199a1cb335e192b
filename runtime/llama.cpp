// CausalLM: loading this rank's shards and the HF Llama forward (RMSNorm, RoPE, GQA attention, SwiGLU).
#include "runtime/llama.h"

#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <limits>

#include "runtime/blas_info.h"
#include "runtime/checkpoint.h"
#include "runtime/dtype.h"
#include "runtime/atomic_file.h"
#include "runtime/error.h"
#include "runtime/linear.h"
#include "runtime/rotary.h"
#include "runtime/safetensors.h"
#include "runtime/tensor_parallel.h"

namespace lopa {

// ---------------------------------------------------------------------------------------------------
// Projection

at::Tensor Projection::forward(const at::Tensor& x, Communicator& tp) const {
  if (!adapter) {
    if (split == Split::Rows) return tp::column_parallel_linear(x, weight, bias, tp, /*gather_output=*/false);
    return tp::row_parallel_linear(x, weight, bias, tp);
  }
  if (split == Split::Rows) {
    // The delta gets the raw input, not xr: its own input gradient is already whole on every rank (a
    // column-parallel adapter all-reduces inside, see Lora), so passing it through copy_to_region again
    // would add it tp times.
    auto xr = tp::copy_to_region(x, tp);
    auto y = lopa::linear(xr, weight, bias);
    return y + adapter->delta(x);
  }
  auto y = lopa::linear(x, weight) + adapter->delta(x);
  y = tp::reduce_from_region(y, tp);
  return bias.defined() ? y + bias : y;
}

// ---------------------------------------------------------------------------------------------------
// Loading

namespace {

// Reads rows [b, e) of `name`, converted; zero-copy when dtype and device match.
at::Tensor load_rows(const Checkpoint& ck, const std::string& name, int64_t b, int64_t e, at::ScalarType dtype,
                     c10::Device dev) {
  return ck.rows(name, b, e, dtype).to(dev);
}
at::Tensor load_cols(const Checkpoint& ck, const std::string& name, int64_t b, int64_t e, at::ScalarType dtype,
                     c10::Device dev) {
  if (b == 0 && e == ck.info(name).shape[1]) return ck.tensor(name, dtype).to(dev);
  return ck.cols(name, b, e, dtype).to(dev);
}
at::Tensor load_full(const Checkpoint& ck, const std::string& name, at::ScalarType dtype, c10::Device dev) {
  return ck.tensor(name, dtype).to(dev);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// HF rotary inverse frequencies (float32) with linear or llama3 scaling, as transformers computes them.
at::Tensor rope_inv_freq(const LlamaConfig& c) {
  const int64_t dim = c.head_dim;
  auto exponent = at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(dim);
  // Scalar / tensor written as PyTorch evaluates it in Python (reciprocal, then multiply) for
  // bit-identical frequencies.
  auto inv_freq = at::pow(c.rope_theta, exponent).reciprocal();
  const auto& rs = c.rope_scaling;
  if (rs.type == "linear") {
    inv_freq = inv_freq / rs.factor;
  } else if (rs.type == "llama3") {
    const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_ctx / rs.low_freq_factor, high_wavelen = old_ctx / rs.high_freq_factor;
    auto wavelen = inv_freq.reciprocal() * (2 * M_PI);
    auto scaled = at::where(wavelen > low_wavelen, inv_freq / rs.factor, inv_freq);
    auto smooth = (wavelen.reciprocal() * old_ctx - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    auto medium = at::logical_and(at::logical_not(wavelen < high_wavelen), at::logical_not(wavelen > low_wavelen));
    inv_freq = at::where(medium, smoothed, scaled);
  }
  return inv_freq.contiguous();
}

}  // namespace

CausalLM CausalLM::load(const std::string& dir, const ProcessGroup& pg, at::ScalarType dtype) {
  if (pg.world_size == 1) ensure_threads();
  at::NoGradGuard no_grad;
  CausalLM m;
  m.pg_ = pg;
  m.dtype_ = dtype;
  m.dir_ = dir;
  const auto ck = Checkpoint::open(dir);
  m.cfg_ = LlamaConfig::from_file(ck.config_path());
  const auto& c = m.cfg_;
  const c10::Device dev = pg.device;

  // Every tensor the config implies must be there with its shape.
  for (const auto& [name, shape] : c.hf_tensor_shapes()) {
    const auto& info = ck.info(name);
    LOPA_CHECK(info.shape == shape, ck.file_of(name), ": tensor '", name, "' has shape ", shape_str(info.shape),
               " but ", ck.config_path(), " implies ", shape_str(shape));
  }
  m.num_parameters_ = c.num_parameters();

  // Tensor-parallel layout: heads, MLP columns and vocabulary split in contiguous ranges.
  const int64_t t = pg.tp_size, r = pg.tp_rank;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, hd = c.head_dim, d = c.hidden_size,
                F = c.intermediate_size, V = c.vocab_size;
  LOPA_CHECK(H % t == 0, dir, ": num_attention_heads ", H, " is not divisible by tp ", t);
  LOPA_CHECK(F % t == 0, dir, ": intermediate_size ", F, " is not divisible by tp ", t);
  const int64_t Hl = H / t, G = H / KV;
  LOPA_CHECK(Hl % G == 0 || G % Hl == 0, dir, ": cannot split ", H, " query heads over ", KV, " kv heads across tp ", t);
  m.heads_local_ = Hl;
  m.head_begin_ = r * Hl;
  m.kv_head_begin_ = m.head_begin_ / G;
  m.kv_heads_local_ = (m.head_begin_ + Hl - 1) / G + 1 - m.kv_head_begin_;  // KV < tp: replicated kv heads
  const int64_t Fl = F / t, f0 = r * Fl;
  m.vocab_shard_ = (V + t - 1) / t;
  m.vocab_begin_ = r * m.vocab_shard_;
  const int64_t v_real = std::max<int64_t>(0, std::min(m.vocab_shard_, V - m.vocab_begin_));

  auto vocab_rows = [&](const std::string& name) {
    auto w = load_rows(ck, name, m.vocab_begin_, m.vocab_begin_ + v_real, dtype, dev);
    if (v_real < m.vocab_shard_)
      w = at::cat({w, at::zeros({m.vocab_shard_ - v_real, d}, w.options())}, 0);
    return w;
  };
  m.embed_ = vocab_rows("model.embed_tokens.weight");
  m.lm_head_ = c.tie_word_embeddings ? m.embed_ : vocab_rows("lm_head.weight");
  if (v_real < m.vocab_shard_) {
    m.vocab_pad_bias_ = at::zeros({m.vocab_shard_}, at::TensorOptions().dtype(dtype).device(dev));
    m.vocab_pad_bias_.narrow(0, v_real, m.vocab_shard_ - v_real).fill_(-std::numeric_limits<float>::infinity());
  }
  m.final_norm_ = load_full(ck, "model.norm.weight", dtype, dev);
  m.inv_freq_ = rope_inv_freq(c).to(dev);

  const int64_t q0 = m.head_begin_ * hd, q1 = (m.head_begin_ + Hl) * hd;
  const int64_t k0 = m.kv_head_begin_ * hd, k1 = (m.kv_head_begin_ + m.kv_heads_local_) * hd;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Layer L;
    L.input_norm = load_full(ck, p + "input_layernorm.weight", dtype, dev);
    L.post_norm = load_full(ck, p + "post_attention_layernorm.weight", dtype, dev);
    auto column = [&](Projection& P, const std::string& module, const std::string& stored, int64_t off, int64_t b,
                      int64_t e, int64_t out_global, bool bias) {
      P.name = p + module;
      P.split = Split::Rows;
      P.weight = load_rows(ck, stored + ".weight", off + b, off + e, dtype, dev);
      if (bias) P.bias = load_rows(ck, stored + ".bias", off + b, off + e, dtype, dev);
      P.in_features = P.in_local = d;
      P.out_features = out_global;
      P.out_local = e - b;
      P.shard_begin = b;
    };
    auto row = [&](Projection& P, const std::string& module, int64_t b, int64_t e, int64_t in_global, bool bias) {
      P.name = p + module;
      P.split = Split::Cols;
      P.weight = load_cols(ck, P.name + ".weight", b, e, dtype, dev);
      if (bias) P.bias = load_full(ck, P.name + ".bias", dtype, dev);
      P.in_features = in_global;
      P.in_local = e - b;
      P.out_features = P.out_local = d;
      P.shard_begin = b;
    };
    if (c.fused_qkv) {
      const std::string qkv = p + "self_attn.qkv_proj";
      column(L.q, "self_attn.q_proj", qkv, 0, q0, q1, H * hd, false);
      column(L.k, "self_attn.k_proj", qkv, H * hd, k0, k1, KV * hd, false);
      column(L.v, "self_attn.v_proj", qkv, H * hd + KV * hd, k0, k1, KV * hd, false);
    } else {
      column(L.q, "self_attn.q_proj", p + "self_attn.q_proj", 0, q0, q1, H * hd, c.qkv_bias);
      column(L.k, "self_attn.k_proj", p + "self_attn.k_proj", 0, k0, k1, KV * hd, c.qkv_bias);
      column(L.v, "self_attn.v_proj", p + "self_attn.v_proj", 0, k0, k1, KV * hd, c.qkv_bias);
    }
    row(L.o, "self_attn.o_proj", q0, q1, H * hd, c.o_bias);
    if (c.fused_gate_up) {
      const std::string gu = p + "mlp.gate_up_proj";
      column(L.gate, "mlp.gate_proj", gu, 0, f0, f0 + Fl, F, false);
      column(L.up, "mlp.up_proj", gu, F, f0, f0 + Fl, F, false);
    } else {
      column(L.gate, "mlp.gate_proj", p + "mlp.gate_proj", 0, f0, f0 + Fl, F, c.mlp_bias);
      column(L.up, "mlp.up_proj", p + "mlp.up_proj", 0, f0, f0 + Fl, F, c.mlp_bias);
    }
    row(L.down, "mlp.down_proj", f0, f0 + Fl, F, c.mlp_bias);
    m.layers_.push_back(std::move(L));
  }
  return m;
}

// ---------------------------------------------------------------------------------------------------
// Forward

at::Tensor CausalLM::rms_norm(const at::Tensor& x, const at::Tensor& w) const {
  // HF LlamaRMSNorm: statistics in float32, normalised value cast back, then scaled by the weight.
  auto h = x.to(at::kFloat);
  auto var = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(var + cfg_.rms_norm_eps);
  return w * h.to(x.scalar_type());
}

at::Tensor CausalLM::embed(const at::Tensor& ids) const {
  return tp::vocab_parallel_embedding(ids.to(device(), at::kLong), embed_, vocab_begin_, *pg_.tp);
}

at::Tensor CausalLM::forward(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask, KVCache* cache,
                             const at::Tensor& position_ids) const {
  LOPA_CHECK(inputs_embeds.dim() == 3 && inputs_embeds.size(2) == cfg_.hidden_size, "CausalLM::forward: inputs_embeds ",
             shape_string(inputs_embeds.sizes()), " must be B × T × ", cfg_.hidden_size);
  const int64_t B = inputs_embeds.size(0), T = inputs_embeds.size(1);
  const int64_t P = cache ? cache->prefix_length() : 0, past = cache ? cache->length() : 0;
  if (cache) LOPA_CHECK(cache->batch() == B, "CausalLM::forward: batch ", B, " but the cache holds ", cache->batch());
  const auto dev = device();
  const auto lopt = at::TensorOptions().dtype(at::kLong).device(dev);

  // Mask over cached + new positions (B × (past + T)), prefix excluded.
  at::Tensor mask_all, new_mask;
  if (!attention_mask.defined()) {
    new_mask = at::ones({B, T}, lopt);
    mask_all = past > 0 ? at::cat({cache->mask(), new_mask}, 1) : new_mask;
  } else {
    auto am = attention_mask.to(dev, at::kLong);
    LOPA_CHECK(am.dim() == 2 && am.size(0) == B, "CausalLM::forward: attention_mask ", shape_string(am.sizes()), " must be B × …");
    if (am.size(1) == past + T) {
      mask_all = am;
    } else if (P > 0 && am.size(1) == P + past + T) {
      mask_all = am.narrow(1, P, past + T);
    } else if (am.size(1) == T) {
      mask_all = past > 0 ? at::cat({cache->mask(), am}, 1) : am;
    } else {
      fail("CausalLM::forward: attention_mask has ", am.size(1), " columns; expected ", T, " (new) or ", past + T,
           " (cached + new)");
    }
    new_mask = mask_all.narrow(1, past, T);
  }
  const bool all_real = (mask_all != 0).all().item<bool>();

  // Positions: HF generate's cumsum(mask) - 1 (left padding), the prefix counted as real positions.
  at::Tensor pos;
  if (position_ids.defined()) {
    pos = position_ids.to(dev, at::kLong);
  } else if (all_real) {
    pos = at::arange(P + past, P + past + T, lopt).unsqueeze(0).expand({B, T});
  } else {
    pos = (mask_all.cumsum(1) - 1 + P).narrow(1, past, T);
    pos = pos.masked_fill(new_mask == 0, 1);
  }

  // Additive attention bias B × 1 × T × S (S = P + past + T): causal, padding, sliding window; prefix visible.
  at::Tensor bias;
  const int64_t K = past + T;
  if (!(T == 1 && all_real && cfg_.sliding_window == 0)) {
    auto kidx = at::arange(K, lopt).view({1, 1, 1, K});
    auto qidx = (at::arange(T, lopt) + past).view({1, 1, T, 1});
    auto allowed = kidx <= qidx;
    if (cfg_.sliding_window > 0) allowed = at::logical_and(allowed, kidx > qidx - cfg_.sliding_window);
    if (!all_real) allowed = at::logical_and(allowed, mask_all.view({B, 1, 1, K}) != 0);
    allowed = allowed.expand({B, 1, T, K});
    bias = at::zeros({B, 1, T, K}, at::TensorOptions().dtype(at::kFloat).device(dev))
               .masked_fill_(at::logical_not(allowed), std::numeric_limits<float>::lowest());
    if (P > 0) bias = at::cat({at::zeros({B, 1, T, P}, bias.options()), bias}, 3);
  }

  // Rotary tables (float32 as HF, then cast): B × 1 × T × hd.
  auto freqs = pos.to(at::kFloat).unsqueeze(-1) * inv_freq_.view({1, 1, -1});
  auto emb = at::cat({freqs, freqs}, -1);
  const auto dt = inputs_embeds.scalar_type();
  auto cos = emb.cos().to(dt).unsqueeze(1), sin = emb.sin().to(dt).unsqueeze(1);

  const int64_t Hl = heads_local_, KVl = kv_heads_local_, hd = cfg_.head_dim, G = Hl / KVl;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  auto& tpc = *pg_.tp;
  if (cache) cache->reserve(T);

  at::Tensor x = inputs_embeds;
  for (int64_t l = 0; l < static_cast<int64_t>(layers_.size()); ++l) {
    const Layer& L = layers_[l];
    auto h = rms_norm(x, L.input_norm);
    auto q = L.q.forward(h, tpc).view({B, T, Hl, hd}).transpose(1, 2);   // B × Hl × T × hd
    auto k = L.k.forward(h, tpc).view({B, T, KVl, hd}).transpose(1, 2);  // B × KVl × T × hd
    auto v = L.v.forward(h, tpc).view({B, T, KVl, hd}).transpose(1, 2);
    q = apply_rotary(q, cos, sin);
    k = apply_rotary(k, cos, sin);
    at::Tensor keys = k, values = v;
    if (cache) std::tie(keys, values) = cache->append(l, k, v);
    const int64_t S = keys.size(2);
    // Grouped-query attention without repeating keys: the G query heads of one kv head are stacked.
    auto qg = q.reshape({B, KVl, G * T, hd});
    auto scores = at::matmul(qg, keys.transpose(2, 3)).mul_(scale);  // B × KVl × (G·T) × S
    if (bias.defined() || dt != at::kFloat) {
      auto s = scores.to(at::kFloat).view({B, KVl, G, T, S});
      if (bias.defined()) s = s + bias.unsqueeze(1);
      scores = s.view({B, KVl, G * T, S});
    }
    auto probs = at::softmax(scores, -1).to(dt);
    auto attn = at::matmul(probs, values)  // B × KVl × (G·T) × hd
                    .view({B, Hl, T, hd})
                    .transpose(1, 2)
                    .reshape({B, T, Hl * hd});
    x = x + L.o.forward(attn, tpc);
    h = rms_norm(x, L.post_norm);
    auto g = L.gate.forward(h, tpc);
    auto u = L.up.forward(h, tpc);
    x = x + L.down.forward(at::silu(g) * u, tpc);
  }
  if (cache) cache->advance(new_mask);
  return rms_norm(x, final_norm_);
}

at::Tensor CausalLM::logits_shard(const at::Tensor& hidden) const {
  auto logits = tp::column_parallel_linear(hidden, lm_head_, {}, *pg_.tp, /*gather_output=*/false);
  if (vocab_pad_bias_.defined()) logits = logits + vocab_pad_bias_;
  return logits;
}

at::Tensor CausalLM::lm_logits(const at::Tensor& hidden) const {
  auto logits = logits_shard(hidden);
  if (pg_.tp_size == 1) return logits;
  return tp::gather_from_region(logits, *pg_.tp).narrow(-1, 0, cfg_.vocab_size);
}

at::Tensor CausalLM::lm_loss(const at::Tensor& hidden, const at::Tensor& labels) const {
  LOPA_CHECK(hidden.dim() == 3 && labels.dim() == 2 && labels.size(0) == hidden.size(0) &&
                 labels.size(1) == hidden.size(1),
             "CausalLM::lm_loss: hidden ", shape_string(hidden.sizes()), " and labels ", shape_string(labels.sizes()), " must be B × T × d and B × T");
  const int64_t T = hidden.size(1);
  if (T < 2) return hidden.sum() * 0;
  auto h = hidden.narrow(1, 0, T - 1).reshape({-1, hidden.size(2)});
  auto y = labels.to(hidden.device(), at::kLong).narrow(1, 1, T - 1).reshape({-1});
  auto keep = (y != -100).nonzero().squeeze(1);
  if (keep.numel() == 0) return hidden.sum().to(at::kFloat) * 0;
  auto logits = logits_shard(h.index_select(0, keep));
  return tp::vocab_parallel_cross_entropy(logits, y.index_select(0, keep), vocab_begin_, *pg_.tp);
}

// ---------------------------------------------------------------------------------------------------
// Parameters

Projection& CausalLM::projection(int64_t layer, const std::string& name) {
  return const_cast<Projection&>(static_cast<const CausalLM*>(this)->projection(layer, name));
}

const Projection& CausalLM::projection(int64_t layer, const std::string& name) const {
  LOPA_CHECK(layer >= 0 && layer < num_layers(), "CausalLM::projection: layer ", layer, " out of range (", num_layers(),
             " layers)");
  const Layer& L = layers_[layer];
  if (name == "q_proj") return L.q;
  if (name == "k_proj") return L.k;
  if (name == "v_proj") return L.v;
  if (name == "o_proj") return L.o;
  if (name == "gate_proj") return L.gate;
  if (name == "up_proj") return L.up;
  if (name == "down_proj") return L.down;
  fail("CausalLM::projection: unknown projection '", name,
       "' (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)");
}

std::vector<NamedParameter> CausalLM::named_parameters() const {
  std::vector<NamedParameter> out;
  auto replicated = [&](const std::string& name, const at::Tensor& t) {
    out.push_back({name, t, ShardInfo{Split::Replicated, t.sizes().vec(), 0, t.size(0)}});
  };
  auto vocab = [&](const std::string& name, const at::Tensor& t) {
    out.push_back({name, t,
                   ShardInfo{Split::Rows, {cfg_.vocab_size, cfg_.hidden_size}, vocab_begin_, vocab_begin_ + vocab_shard_}});
  };
  auto proj = [&](const Projection& P) {
    if (P.split == Split::Rows) {
      out.push_back({P.name + ".weight", P.weight,
                     ShardInfo{Split::Rows, {P.out_features, P.in_features}, P.shard_begin, P.shard_begin + P.out_local}});
      if (P.bias.defined())
        out.push_back({P.name + ".bias", P.bias,
                       ShardInfo{Split::Rows, {P.out_features}, P.shard_begin, P.shard_begin + P.out_local}});
    } else {
      out.push_back({P.name + ".weight", P.weight,
                     ShardInfo{Split::Cols, {P.out_features, P.in_features}, P.shard_begin, P.shard_begin + P.in_local}});
      if (P.bias.defined()) replicated(P.name + ".bias", P.bias);
    }
  };
  vocab("model.embed_tokens.weight", embed_);
  for (int64_t l = 0; l < num_layers(); ++l) {
    const Layer& L = layers_[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    replicated(p + "input_layernorm.weight", L.input_norm);
    for (const Projection* P : {&L.q, &L.k, &L.v, &L.o}) proj(*P);
    replicated(p + "post_attention_layernorm.weight", L.post_norm);
    for (const Projection* P : {&L.gate, &L.up, &L.down}) proj(*P);
  }
  replicated("model.norm.weight", final_norm_);
  if (!cfg_.tie_word_embeddings) vocab("lm_head.weight", lm_head_);
  return out;
}

void CausalLM::set_trainable(bool trainable) {
  for (auto& p : named_parameters()) {
    auto t = p.tensor;
    t.requires_grad_(trainable);
  }
}

void CausalLM::save_pretrained(const std::string& dir) const {
  at::NoGradGuard no_grad;
  auto& tpc = *pg_.tp;
  const bool writer = pg_.is_root();
  NamedTensors tensors;
  for (const auto& p : named_parameters()) {
    at::Tensor full;
    if (p.shard.split == Split::Replicated || pg_.tp_size == 1) {
      full = p.tensor;
    } else {
      // Gather every rank's shard and its global range; duplicates (replicated kv heads) agree.
      const int64_t dim = p.shard.split == Split::Rows ? 0 : 1;
      auto parts = tpc.all_gather(p.tensor.contiguous(), dim);
      auto range = at::tensor({p.shard.begin, p.shard.end}, at::TensorOptions().dtype(at::kLong)).to(p.tensor.device());
      auto ranges = tpc.all_gather(range, 0).to(at::kCPU);
      full = at::zeros(p.shard.global_shape, p.tensor.options());
      const int64_t n = p.tensor.size(dim), global = p.shard.global_shape[dim];
      for (int64_t i = 0; i < pg_.tp_size; ++i) {
        const int64_t b = ranges[2 * i].item<int64_t>(), e = std::min(ranges[2 * i + 1].item<int64_t>(), global);
        if (e > b) full.narrow(dim, b, e - b).copy_(parts.narrow(dim, i * n, e - b));
      }
    }
    if (writer) tensors.push_back({p.name, full.to(at::kCPU)});
  }
  if (!writer) return;
  if (cfg_.fused_qkv || cfg_.fused_gate_up) {
    // Phi3: restore the fused qkv_proj / gate_up_proj of the HF layout.
    std::map<std::string, at::Tensor> byname(tensors.begin(), tensors.end());
    NamedTensors fused;
    for (const auto& [name, t] : tensors) {
      auto ends = [&](const std::string& s) { return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
      if (ends("self_attn.q_proj.weight")) {
        const auto p = name.substr(0, name.size() - std::string("q_proj.weight").size());
        fused.push_back({p + "qkv_proj.weight", at::cat({t, byname[p + "k_proj.weight"], byname[p + "v_proj.weight"]}, 0)});
      } else if (ends("mlp.gate_proj.weight")) {
        const auto p = name.substr(0, name.size() - std::string("gate_proj.weight").size());
        fused.push_back({p + "gate_up_proj.weight", at::cat({t, byname[p + "up_proj.weight"]}, 0)});
      } else if (!ends("self_attn.k_proj.weight") && !ends("self_attn.v_proj.weight") && !ends("mlp.up_proj.weight")) {
        fused.push_back({name, t});
      }
    }
    tensors = std::move(fused);
  }
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  save_safetensors(dir + "/model.safetensors", tensors);
  write_file_atomic(dir + "/config.json", cfg_.json + "\n");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"}) {
    const fs::path src = fs::path(dir_) / f;
    if (fs::exists(src) && fs::absolute(src) != fs::absolute(fs::path(dir) / f))
      fs::copy_file(src, fs::path(dir) / f, fs::copy_options::overwrite_existing);
  }
}

}  // namespace lopa
