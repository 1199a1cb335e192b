// CausalLM: loading this rank's shards through the architecture's tensor table, the decoder forward
// skeleton (masks, positions, blocks, final norm), the LM head and loss, and saving in HF layout.
#include "runtime/model/causal_lm.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "runtime/base/blas_info.h"
#include "runtime/base/error.h"
#include "runtime/distributed/tensor_parallel.h"
#include "runtime/io/atomic_file.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/dtype.h"
#include "runtime/io/safetensors.h"
#include "runtime/model/attention.h"
#include "runtime/model/describe.h"
#include "runtime/model/rotary.h"

namespace lopa {

namespace {

// Contiguous runs [first, first + n) of consecutive values in rows[b, e).
std::vector<std::pair<int64_t, int64_t>> runs(const std::vector<int64_t>& rows, int64_t b, int64_t e) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t i = b; i < e; ++i) {
    if (!out.empty() && out.back().first + out.back().second == rows[i]) ++out.back().second;
    else out.push_back({rows[i], 1});
  }
  return out;
}

// The full tensor of a parameter gathered over the tp group (every rank gets it).
at::Tensor gather_full(const NamedParameter& p, const ProcessGroup& pg) {
  if (p.shard.split == Split::Replicated || pg.tp_size == 1) {
    if (p.shard.split == Split::Rows && p.tensor.size(0) > p.shard.global_shape[0])
      return p.tensor.narrow(0, 0, p.shard.global_shape[0]);
    return p.tensor;
  }
  // Gather every rank's shard and its global range; duplicates (replicated kv heads) agree.
  const int64_t dim = p.shard.split == Split::Rows ? 0 : 1;
  auto& tpc = *pg.tp;
  auto parts = tpc.all_gather(p.tensor.contiguous(), dim);
  auto range = at::tensor({p.shard.begin, p.shard.end}, at::TensorOptions().dtype(at::kLong)).to(p.tensor.device());
  auto ranges = tpc.all_gather(range, 0).to(at::kCPU);
  auto full = at::zeros(p.shard.global_shape, p.tensor.options());
  const int64_t n = p.tensor.size(dim), global = p.shard.global_shape[dim];
  for (int64_t i = 0; i < pg.tp_size; ++i) {
    const int64_t b = ranges[2 * i].item<int64_t>(), e = std::min(ranges[2 * i + 1].item<int64_t>(), global);
    if (e > b) full.narrow(dim, b, e - b).copy_(parts.narrow(dim, i * n, e - b));
  }
  return full;
}

bool fused(const LayerSpec& L, const std::string& module) {
  int n = 0;
  for (const auto& p : L.projections) n += p.module == module;
  return n > 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Loading

CausalLM CausalLM::load(const std::string& dir, const ProcessGroup& pg, at::ScalarType dtype) {
  if (pg.world_size == 1) ensure_threads();
  at::NoGradGuard no_grad;
  CausalLM m;
  m.pg_ = pg;
  m.dtype_ = dtype;
  m.dir_ = dir;
  m.arch_ = load_architecture(dir + "/config.json");  // an unsupported architecture is named first
  const auto ck = Checkpoint::open(dir);
  m.spec_ = m.arch_->spec();
  const auto& c = m.config();

  // Tensor-parallel layout: heads, MLP features and vocabulary split in contiguous ranges.
  const int64_t t = pg.tp_size, r = pg.tp_rank;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, V = c.vocab_size;
  LOPA_CHECK(H % t == 0, dir, ": num_attention_heads ", H, " is not divisible by tp ", t);
  const int64_t Hl = H / t, G = H / KV;
  LOPA_CHECK(Hl % G == 0 || G % Hl == 0, dir, ": cannot split ", H, " query heads over ", KV, " kv heads across tp ", t);
  m.heads_local_ = Hl;
  m.head_begin_ = r * Hl;
  m.kv_head_begin_ = m.head_begin_ / G;
  m.kv_heads_local_ = (m.head_begin_ + Hl - 1) / G + 1 - m.kv_head_begin_;  // KV < tp: replicated kv heads
  m.vocab_shard_ = (V + t - 1) / t;
  m.vocab_begin_ = r * m.vocab_shard_;
  m.read_weights(ck, /*in_place=*/false);
  if (c.rotary != RotaryStyle::None) m.inv_freq_ = rope_inv_freq(c).to(pg.device);
  return m;
}

void CausalLM::load_weights(const std::string& dir) {
  at::NoGradGuard no_grad;
  read_weights(Checkpoint::open(dir), /*in_place=*/true);
}

void CausalLM::read_weights(const Checkpoint& ck, bool in_place) {
  const auto& c = config();
  const auto& S = spec_;
  auto name = [&](const std::string& n) { return stored_name(ck, S, n); };
  check_tensors(ck, S, c);
  num_parameters_ = lopa::num_parameters(tensor_table(S, c));

  const c10::Device dev = pg_.device;
  const int64_t t = pg_.tp_size, r = pg_.tp_rank, V = c.vocab_size, hd = c.head_dim;
  auto put = [&](at::Tensor& dst, at::Tensor src) {
    src = src.to(dev, dtype_).contiguous();
    if (in_place) {
      LOPA_CHECK(dst.defined() && dst.sizes() == src.sizes(), ck.dir(), ": weights do not match the loaded model");
      dst.copy_(src);
    } else {
      dst = src;
    }
  };
  auto full = [&](const std::string& n) { return ck.tensor(name(n), dtype_); };

  const int64_t v_real = std::max<int64_t>(0, std::min(vocab_shard_, V - vocab_begin_));
  auto vocab_rows = [&](const std::string& n) {
    auto w = ck.rows(name(n), vocab_begin_, vocab_begin_ + v_real, dtype_);
    if (v_real < vocab_shard_) {
      auto shape = w.sizes().vec();
      shape[0] = vocab_shard_ - v_real;
      w = at::cat({w, at::zeros(shape, w.options())}, 0);
    }
    return w;
  };
  put(embed_, vocab_rows(S.embed + ".weight"));
  if (!S.position_embed.empty()) put(pos_embed_, full(S.position_embed + ".weight"));
  if (!S.token_type_embed.empty()) put(type_embed_, full(S.token_type_embed + ".weight"));
  if (S.lm_head.empty() || !S.has_lm_head) {
    lm_head_ = embed_;
  } else {
    put(lm_head_, vocab_rows(S.lm_head + ".weight"));
    if (S.lm_head_bias) put(lm_head_bias_, vocab_rows(S.lm_head + ".bias"));
  }
  if (S.has_lm_head && !S.output_bias.empty()) put(lm_head_bias_, vocab_rows(S.output_bias));
  if (!in_place && v_real < vocab_shard_) {
    vocab_pad_bias_ = at::zeros({vocab_shard_}, at::TensorOptions().dtype(dtype_).device(dev));
    vocab_pad_bias_.narrow(0, v_real, vocab_shard_ - v_real).fill_(-std::numeric_limits<float>::infinity());
  }
  auto read_norm = [&](Norm& n, const std::string& module) {
    n.kind = S.norm;
    n.eps = S.norm_eps;
    put(n.weight, full(module + ".weight"));
    if (S.norm == NormKind::Layer) put(n.bias, full(module + ".bias"));
  };
  if (!S.final_norm.empty()) read_norm(final_norm_, S.final_norm);
  if (!S.embed_norm.empty()) read_norm(embed_norm_, S.embed_norm);
  if (S.has_lm_head && !S.head_dense.empty()) {
    put(head_dense_w_, full(S.head_dense + ".weight"));
    put(head_dense_b_, full(S.head_dense + ".bias"));
    read_norm(head_norm_, S.head_norm);
  }

  if (!in_place) blocks_.assign(S.layers.size(), Block{});
  for (size_t l = 0; l < S.layers.size(); ++l) {
    const LayerSpec& L = S.layers[l];
    Block& B = blocks_[l];
    if (!in_place) B.norms.resize(L.norms.size());
    for (size_t i = 0; i < L.norms.size(); ++i) read_norm(B.norms[i], L.norms[i]);
    for (const auto& ps : L.projections) {
      Projection& P = B[ps.role];
      const std::string W = name(ps.module + ".weight"), Bn = name(ps.module + ".bias");
      if (!in_place) {
        P.module = ps.module;
        P.role = ps.role;
        P.row_parallel = ps.row_parallel;
        P.in_features = ps.in;
        P.out_features = ps.out;
        P.module_rows = ps.rows;
        if (P.module_rows.empty()) {
          P.module_rows.resize(ps.out);
          for (int64_t i = 0; i < ps.out; ++i) P.module_rows[i] = ps.row_offset + i;
        }
      }
      // This rank's range of the split dimension (outputs of a column-parallel projection, inputs of a
      // row-parallel one).
      tp::Range range;
      const int64_t split_size = ps.row_parallel ? ps.in : ps.out;
      switch (ps.shard) {
        case Shard::QueryHeads: range = {head_begin_ * hd, (head_begin_ + heads_local_) * hd}; break;
        case Shard::KVHeads: range = {kv_head_begin_ * hd, (kv_head_begin_ + kv_heads_local_) * hd}; break;
        case Shard::Features: range = tp::shard_range(split_size, r, t, (ps.module + " features").c_str()); break;
      }
      P.shard_begin = range.begin;
      if (!ps.row_parallel) {
        P.in_local = ps.in;
        P.out_local = range.size();
        std::vector<at::Tensor> w, b;
        for (const auto& [first, n] : runs(P.module_rows, range.begin, range.end)) {
          w.push_back(ps.transposed ? ck.cols(W, first, first + n, dtype_).t() : ck.rows(W, first, first + n, dtype_));
          if (ps.has_bias) b.push_back(ck.rows(Bn, first, first + n, dtype_));
        }
        put(P.weight, w.size() == 1 ? w[0] : at::cat(w, 0));
        if (ps.has_bias) put(P.bias, b.size() == 1 ? b[0] : at::cat(b, 0));
      } else {
        LOPA_CHECK(ps.rows.empty() && ps.row_offset == 0, ps.module, ": a row-parallel projection cannot be fused");
        P.in_local = range.size();
        P.out_local = ps.out;
        const bool whole = range.begin == 0 && range.end == ps.in;
        at::Tensor w;
        if (ps.transposed) w = ck.rows(W, range.begin, range.end, dtype_).t();
        else w = whole ? ck.tensor(W, dtype_) : ck.cols(W, range.begin, range.end, dtype_);
        put(P.weight, w);
        if (ps.has_bias) put(P.bias, full(ps.module + ".bias"));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Forward

at::Tensor CausalLM::embed(const at::Tensor& ids) const {
  return tp::vocab_parallel_embedding(ids.to(device(), at::kLong), embed_, vocab_begin_, *pg_.tp);
}

at::Tensor CausalLM::forward(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask, KVCache* cache,
                             const at::Tensor& position_ids, int64_t keep_from) const {
  const auto& c = config();
  LOPA_CHECK(inputs_embeds.dim() == 3 && inputs_embeds.size(2) == c.hidden_size, "CausalLM::forward: inputs_embeds ",
             shape_string(inputs_embeds.sizes()), " must be B × T × ", c.hidden_size);
  const int64_t B = inputs_embeds.size(0), T = inputs_embeds.size(1);
  LOPA_CHECK(keep_from >= 0 && keep_from < std::max<int64_t>(T, 1), "CausalLM::forward: keep_from ", keep_from,
             " outside the ", T, " input positions");
  const int64_t P = cache ? cache->prefix_length() : 0, past = cache ? cache->length() : 0;
  if (cache) LOPA_CHECK(cache->batch() == B, "CausalLM::forward: batch ", B, " but the cache holds ", cache->batch());
  // An encoder attends over the whole input at once: a cache may hold a prefix (prefix tuning, every position
  // seeing it as HF's past_key_values), never earlier tokens (that would be generation).
  LOPA_CHECK(!cache || spec_.causal || past == 0, c.architecture,
             " is a bidirectional encoder: it has no KV cache of earlier tokens and cannot generate");
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

  at::Tensor x = inputs_embeds;
  // BERT/RoBERTa: (inputs_embeds + token type 0) + positions, in transformers' order of additions.
  if (type_embed_.defined()) x = x + type_embed_[0];
  if (pos_embed_.defined()) {
    // Learned absolute positions (GPT-2), added to the inputs as HF adds them to inputs_embeds.
    const int64_t n_pos = pos_embed_.size(0);
    if (position_ids.defined()) {
      const int64_t top = pos.numel() ? pos.max().item<int64_t>() : 0;
      LOPA_CHECK(top < n_pos, "CausalLM::forward: position id ", top, " exceeds the model's ", n_pos,
                 " learned positions (the input is too long)");
    } else {
      LOPA_CHECK(P + past + T <= n_pos, "CausalLM::forward: ", P + past + T, " positions exceed the model's ", n_pos,
                 " learned positions");
    }
    x = x + at::embedding(pos_embed_, pos);
  }
  if (embed_norm_.weight.defined()) x = embed_norm_.forward(x);
  AttentionShape shape;
  shape.heads_local = heads_local_;
  shape.kv_heads_local = kv_heads_local_;
  shape.head_dim = c.head_dim;
  shape.rotary = c.rotary;
  shape.rotary_dim = c.rotary_dim;
  shape.sliding_window = c.sliding_window;
  shape.fp32_scores = spec_.attention_fp32;
  shape.causal = spec_.causal;
  const bool store = cache && spec_.causal;  // see Attention: an encoder's cache keeps its prefix only
  if (store) cache->reserve(T);
  Attention attention(shape, mask_all, all_real, pos, inv_freq_, inputs_embeds.scalar_type(), cache, T);
  auto& tpc = *pg_.tp;
  for (size_t l = 0; l < blocks_.size(); ++l) {
    attention.set_layer(static_cast<int64_t>(l));
    if (l + 1 == blocks_.size()) attention.keep_queries_from(keep_from);
    x = arch_->block(blocks_[l], x, attention, tpc);
  }
  if (blocks_.empty()) {
    attention.keep_queries_from(keep_from);
    x = attention.queries(x);
  }
  if (store) cache->advance(new_mask);
  return final_norm_.weight.defined() ? final_norm_.forward(x) : x;
}

at::Tensor CausalLM::logits_shard(const at::Tensor& hidden) const {
  LOPA_CHECK(spec_.has_lm_head, config().architecture, " is a base model without a vocabulary head (",
             dir_, "); use its *ForMaskedLM / *LMHeadModel checkpoint for logits");
  at::Tensor h = hidden;
  if (head_dense_w_.defined())  // replicated: every tp rank transforms the whole hidden state
    h = head_norm_.forward(activate(spec_.head_act, at::linear(hidden, head_dense_w_, head_dense_b_)));
  auto logits = tp::column_parallel_linear(h, lm_head_, lm_head_bias_, *pg_.tp, /*gather_output=*/false);
  if (vocab_pad_bias_.defined()) logits = logits + vocab_pad_bias_;
  return logits;
}

at::Tensor CausalLM::lm_logits(const at::Tensor& hidden) const {
  auto logits = logits_shard(hidden);
  if (pg_.tp_size == 1) return logits;
  return tp::gather_from_region(logits, *pg_.tp).narrow(-1, 0, vocab_size());
}

at::Tensor CausalLM::lm_loss(const at::Tensor& hidden, const at::Tensor& labels) const {
  LOPA_CHECK(hidden.dim() == 3 && labels.dim() == 2 && labels.size(0) == hidden.size(0) &&
                 labels.size(1) == hidden.size(1),
             "CausalLM::lm_loss: hidden ", shape_string(hidden.sizes()), " and labels ", shape_string(labels.sizes()), " must be B × T × d and B × T");
  LOPA_CHECK(spec_.causal, config().architecture, " is a bidirectional encoder: it has no causal-LM loss");
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
// Projections by role and module

Projection& CausalLM::projection(int64_t layer, Role role) {
  return const_cast<Projection&>(static_cast<const CausalLM*>(this)->projection(layer, role));
}

const Projection& CausalLM::projection(int64_t layer, Role role) const {
  LOPA_CHECK(layer >= 0 && layer < num_layers(), "CausalLM::projection: layer ", layer, " out of range (", num_layers(),
             " layers)");
  const Projection& p = blocks_[layer][role];
  if (!p.defined()) {
    std::string have;
    for (int i = 0; i < kNumRoles; ++i)
      if (blocks_[layer].proj[i].defined()) have += std::string(have.empty() ? "" : " ") + role_name(static_cast<Role>(i));
    fail(config().architecture, " has no '", role_name(role), "' projection (it has: ", have, ")");
  }
  return p;
}

Projection& CausalLM::projection(int64_t layer, const std::string& role) {
  return const_cast<Projection&>(static_cast<const CausalLM*>(this)->projection(layer, role));
}

const Projection& CausalLM::projection(int64_t layer, const std::string& role) const {
  auto r = parse_role(role);
  LOPA_CHECK(r, "CausalLM::projection: unknown role '", role, "' (q k v o gate up down fc_in fc_out)");
  return projection(layer, *r);
}

std::vector<Projection*> CausalLM::module_projections(int64_t layer, const std::string& name) {
  LOPA_CHECK(layer >= 0 && layer < num_layers(), "CausalLM::module_projections: layer ", layer, " out of range");
  std::vector<Projection*> out;
  for (auto& p : blocks_[layer].proj) {
    if (!p.defined()) continue;
    const auto dot = p.module.rfind('.');
    if (p.module.substr(dot == std::string::npos ? 0 : dot + 1) == name) out.push_back(&p);
  }
  if (out.empty()) {
    std::string have;
    for (const auto& n : module_names()) have += (have.empty() ? "" : " ") + n;
    fail(config().architecture, " has no module '", name, "' (its modules: ", have, ")");
  }
  return out;
}

std::vector<std::string> CausalLM::module_names() const {
  std::vector<std::string> out;
  if (spec_.layers.empty()) return out;
  for (const auto& ps : spec_.layers[0].projections) {
    const auto dot = ps.module.rfind('.');
    auto n = ps.module.substr(dot == std::string::npos ? 0 : dot + 1);
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Parameters

std::vector<NamedParameter> CausalLM::named_parameters() const {
  const auto& c = config();
  std::vector<NamedParameter> out;
  auto replicated = [&](const std::string& name, const at::Tensor& t) {
    if (t.defined()) out.push_back({name, t, ShardInfo{Split::Replicated, t.sizes().vec(), 0, t.size(0)}});
  };
  auto vocab = [&](const std::string& name, const at::Tensor& t) {
    auto shape = t.sizes().vec();
    shape[0] = c.vocab_size;
    out.push_back({name, t, ShardInfo{Split::Rows, shape, vocab_begin_, vocab_begin_ + vocab_shard_}});
  };
  auto norm = [&](const std::string& module, const Norm& n) {
    replicated(module + ".weight", n.weight);
    replicated(module + ".bias", n.bias);
  };
  vocab(spec_.embed + ".weight", embed_);
  replicated(spec_.position_embed + ".weight", pos_embed_);
  replicated(spec_.token_type_embed + ".weight", type_embed_);
  norm(spec_.embed_norm, embed_norm_);
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const LayerSpec& L = spec_.layers[l];
    const Block& B = blocks_[l];
    for (size_t i = 0; i < L.norms.size(); ++i) norm(L.norms[i], B.norms[i]);
    for (const auto& ps : L.projections) {
      const Projection& P = B[ps.role];
      const std::string suffix = fused(L, ps.module) ? std::string(":") + role_name(ps.role) : "";
      if (!P.row_parallel) {
        out.push_back({P.module + ".weight" + suffix, P.weight,
                       ShardInfo{Split::Rows, {P.out_features, P.in_features}, P.shard_begin, P.shard_begin + P.out_local}});
        if (P.bias.defined())
          out.push_back({P.module + ".bias" + suffix, P.bias,
                         ShardInfo{Split::Rows, {P.out_features}, P.shard_begin, P.shard_begin + P.out_local}});
      } else {
        out.push_back({P.module + ".weight" + suffix, P.weight,
                       ShardInfo{Split::Cols, {P.out_features, P.in_features}, P.shard_begin, P.shard_begin + P.in_local}});
        replicated(P.module + ".bias" + suffix, P.bias);
      }
    }
  }
  norm(spec_.final_norm, final_norm_);
  if (!spec_.has_lm_head) return out;
  replicated(spec_.head_dense + ".weight", head_dense_w_);
  replicated(spec_.head_dense + ".bias", head_dense_b_);
  norm(spec_.head_norm, head_norm_);
  if (!spec_.lm_head.empty()) {
    vocab(spec_.lm_head + ".weight", lm_head_);
    if (lm_head_bias_.defined() && spec_.output_bias.empty()) vocab(spec_.lm_head + ".bias", lm_head_bias_);
  }
  if (!spec_.output_bias.empty()) vocab(spec_.output_bias, lm_head_bias_);
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
  const bool writer = pg_.is_root();
  // Gather every parameter (a collective: every rank takes part), then lay fused modules and Conv1D
  // weights out as transformers stores them.
  std::map<std::string, at::Tensor> full;
  for (const auto& p : named_parameters()) {
    auto t = gather_full(p, pg_);
    if (writer) full[p.name] = t.to(at::kCPU);
  }
  if (!writer) return;
  NamedTensors tensors;
  std::set<std::string> done;
  auto take = [&](const std::string& name) {
    if (!full.count(name) || done.count(name)) return;
    tensors.push_back({name, full[name]});
    done.insert(name);
  };
  take(spec_.embed + ".weight");
  take(spec_.position_embed + ".weight");
  take(spec_.token_type_embed + ".weight");
  take(spec_.embed_norm + ".weight");
  take(spec_.embed_norm + ".bias");
  for (const auto& L : spec_.layers) {
    for (const auto& n : L.norms) {
      take(n + ".weight");
      take(n + ".bias");
    }
    for (const auto& ps : L.projections) {
      if (!fused(L, ps.module)) {
        for (const char* what : {".weight", ".bias"}) {
          const auto name = ps.module + what;
          if (!full.count(name) || done.count(name)) continue;
          tensors.push_back({name, ps.transposed && std::string(what) == ".weight" ? full[name].t().contiguous() : full[name]});
          done.insert(name);
        }
        continue;
      }
      if (done.count(ps.module + ".weight")) continue;
      // A fused module: each part's rows back into the module's output rows.
      int64_t rows = 0;
      for (const auto& q : L.projections) rows += q.module == ps.module ? q.out : 0;
      at::Tensor W = at::zeros({rows, ps.in}, full.begin()->second.options()), Bv;
      if (ps.has_bias) Bv = at::zeros({rows}, W.options());
      for (const auto& q : L.projections) {
        if (q.module != ps.module) continue;
        const Projection& P = blocks_[0][q.role];  // module_rows are the same in every layer
        auto idx = at::tensor(P.module_rows, at::TensorOptions().dtype(at::kLong));
        const std::string part = std::string(":") + role_name(q.role);
        W.index_copy_(0, idx, full.at(q.module + ".weight" + part));
        if (ps.has_bias) Bv.index_copy_(0, idx, full.at(q.module + ".bias" + part));
      }
      tensors.push_back({ps.module + ".weight", ps.transposed ? W.t().contiguous() : W});
      if (ps.has_bias) tensors.push_back({ps.module + ".bias", Bv});
      done.insert(ps.module + ".weight");
    }
  }
  take(spec_.final_norm + ".weight");
  take(spec_.final_norm + ".bias");
  take(spec_.head_dense + ".weight");
  take(spec_.head_dense + ".bias");
  take(spec_.head_norm + ".weight");
  take(spec_.head_norm + ".bias");
  take(spec_.lm_head + ".weight");
  take(spec_.lm_head + ".bias");
  take(spec_.output_bias);
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  save_safetensors(dir + "/model.safetensors", tensors);
  write_file_atomic(dir + "/config.json", config().json + "\n");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                        "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "added_tokens.json"}) {
    const fs::path src = fs::path(dir_) / f;
    if (fs::exists(src) && fs::absolute(src) != fs::absolute(fs::path(dir) / f))
      fs::copy_file(src, fs::path(dir) / f, fs::copy_options::overwrite_existing);
  }
}

}  // namespace lopa
