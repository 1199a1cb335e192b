// KVCache: preallocated per-layer key/value buffers, grown by doubling; optional prefix.
#include "runtime/model/kv_cache.h"

#include "runtime/io/dtype.h"
#include "runtime/base/error.h"
#include "runtime/model/causal_lm.h"

namespace lopa {

KVCache::KVCache(int64_t num_layers, int64_t batch, int64_t kv_heads_local, int64_t head_dim, int64_t capacity,
                 at::ScalarType dtype, c10::Device device)
    : batch_(batch), kv_heads_(kv_heads_local), head_dim_(head_dim), capacity_(std::max<int64_t>(capacity, 1)),
      dtype_(dtype), device_(device) {
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < num_layers; ++l) {
    k_.push_back(at::empty({batch, kv_heads_local, capacity_, head_dim}, opts));
    v_.push_back(at::empty({batch, kv_heads_local, capacity_, head_dim}, opts));
  }
  mask_ = at::zeros({batch, capacity_}, at::TensorOptions().dtype(at::kLong).device(device));
}

KVCache KVCache::for_model(const CausalLM& m, int64_t batch, int64_t capacity) {
  return KVCache(m.num_layers(), batch, m.num_kv_heads_local(), m.head_dim(), capacity, m.dtype(), m.device());
}

void KVCache::set_prefix(std::vector<at::Tensor> keys, std::vector<at::Tensor> values) {
  LOPA_CHECK(len_ == 0 && prefix_len_ == 0, "KVCache::set_prefix: the cache already holds positions");
  LOPA_CHECK(keys.size() == k_.size() && values.size() == k_.size(), "KVCache::set_prefix: expected ", k_.size(),
             " layers of keys and values, got ", keys.size(), " and ", values.size());
  bool grad = false;
  for (size_t l = 0; l < keys.size(); ++l) {
    for (const auto* t : {&keys[l], &values[l]}) {
      LOPA_CHECK(t->dim() == 4 && (t->size(0) == 1 || t->size(0) == batch_) && t->size(1) == kv_heads_ &&
                     t->size(3) == head_dim_ && t->size(2) == keys[0].size(2),
                 "KVCache::set_prefix: layer ", l, " prefix has shape ", shape_string(t->sizes()), ", expected (1 or ", batch_,
                 ") × ", kv_heads_, " × P × ", head_dim_);
      grad = grad || t->requires_grad();
    }
  }
  prefix_len_ = keys[0].size(2);
  if (grad) {
    // Trainable prefix: kept aside and concatenated in front at each attention, so gradients reach it.
    for (size_t l = 0; l < keys.size(); ++l) {
      prefix_k_.push_back(keys[l].to(device_, dtype_).expand({batch_, kv_heads_, prefix_len_, head_dim_}));
      prefix_v_.push_back(values[l].to(device_, dtype_).expand({batch_, kv_heads_, prefix_len_, head_dim_}));
    }
    prefix_in_buffer_ = false;
    return;
  }
  // Frozen prefix (generation): written once into the first slots of the buffers.
  prefix_in_buffer_ = true;
  const int64_t cap = capacity_ + prefix_len_;
  const auto opts = at::TensorOptions().dtype(dtype_).device(device_);
  for (size_t l = 0; l < keys.size(); ++l) {
    k_[l] = at::empty({batch_, kv_heads_, cap, head_dim_}, opts);
    v_[l] = at::empty({batch_, kv_heads_, cap, head_dim_}, opts);
    k_[l].narrow(2, 0, prefix_len_).copy_(keys[l].expand({batch_, kv_heads_, prefix_len_, head_dim_}));
    v_[l].narrow(2, 0, prefix_len_).copy_(values[l].expand({batch_, kv_heads_, prefix_len_, head_dim_}));
  }
  capacity_ = cap;
}

void KVCache::reserve(int64_t t) {
  const int64_t base = prefix_in_buffer_ ? prefix_len_ : 0;
  const int64_t need = base + len_ + t;
  if (need <= capacity_ && len_ + t <= mask_.size(1)) return;
  const int64_t cap = std::max(need, 2 * capacity_);
  const auto opts = at::TensorOptions().dtype(dtype_).device(device_);
  for (size_t l = 0; l < k_.size(); ++l) {
    auto k = at::empty({batch_, kv_heads_, cap, head_dim_}, opts), v = at::empty_like(k);
    k.narrow(2, 0, base + len_).copy_(k_[l].narrow(2, 0, base + len_));
    v.narrow(2, 0, base + len_).copy_(v_[l].narrow(2, 0, base + len_));
    k_[l] = k;
    v_[l] = v;
  }
  auto m = at::zeros({batch_, cap}, mask_.options());
  m.narrow(1, 0, len_).copy_(mask_.narrow(1, 0, len_));
  mask_ = m;
  capacity_ = cap;
}

namespace {
void check_fits(const at::Tensor& k, int64_t batch, int64_t kv_heads, int64_t head_dim) {
  LOPA_CHECK(k.dim() == 4 && k.size(0) == batch && k.size(1) == kv_heads && k.size(3) == head_dim, "KVCache: keys of shape ",
             shape_string(k.sizes()), " do not fit a cache of batch ", batch, ", ", kv_heads, " kv heads, head_dim ", head_dim);
}
}  // namespace

std::pair<at::Tensor, at::Tensor> KVCache::append(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  check_fits(k, batch_, kv_heads_, head_dim_);
  const int64_t t = k.size(2);
  const int64_t base = (prefix_in_buffer_ ? prefix_len_ : 0) + len_;
  // The buffer stores constants; gradients (if any) flow through the current step's k/v and the prefix.
  k_[layer].narrow(2, base, t).copy_(k.detach());
  v_[layer].narrow(2, base, t).copy_(v.detach());
  const bool grad = k.requires_grad() || v.requires_grad() || !prefix_k_.empty();
  if (!grad) return {k_[layer].narrow(2, 0, base + t), v_[layer].narrow(2, 0, base + t)};
  return attend(layer, k, v);  // length is advanced after all layers: attend sees the positions before k
}

std::pair<at::Tensor, at::Tensor> KVCache::attend(int64_t layer, const at::Tensor& k, const at::Tensor& v) const {
  check_fits(k, batch_, kv_heads_, head_dim_);
  const int64_t held = (prefix_in_buffer_ ? prefix_len_ : 0) + len_;
  std::vector<at::Tensor> ks, vs;
  if (!prefix_k_.empty()) {
    ks.push_back(prefix_k_[layer]);
    vs.push_back(prefix_v_[layer]);
  }
  if (held > 0) {
    ks.push_back(k_[layer].narrow(2, 0, held));
    vs.push_back(v_[layer].narrow(2, 0, held));
  }
  if (ks.empty()) return {k, v};
  ks.push_back(k);
  vs.push_back(v);
  return {at::cat(ks, 2), at::cat(vs, 2)};
}

at::Tensor KVCache::keys(int64_t layer) const {
  auto held = k_.at(layer).narrow(2, 0, (prefix_in_buffer_ ? prefix_len_ : 0) + len_);
  return prefix_k_.empty() ? held : at::cat({prefix_k_[layer], held}, 2);
}
at::Tensor KVCache::values(int64_t layer) const {
  auto held = v_.at(layer).narrow(2, 0, (prefix_in_buffer_ ? prefix_len_ : 0) + len_);
  return prefix_v_.empty() ? held : at::cat({prefix_v_[layer], held}, 2);
}

void KVCache::advance(const at::Tensor& new_mask) {
  const int64_t t = new_mask.size(1);
  mask_.narrow(1, len_, t).copy_(new_mask);
  len_ += t;
}

}  // namespace lopa

namespace lopa {

void KVCache::add_rows(const KVCache& other) {
  LOPA_CHECK(prefix_len_ == 0, "KVCache::add_rows: a cache with a prefix cannot take rows (its prefix is shared)");
  LOPA_CHECK(other.prefix_k_.empty(), "KVCache::add_rows: the added cache has a trainable prefix");
  const bool empty = batch_ == 0 || k_.empty();
  if (!empty)
    LOPA_CHECK(k_.size() == other.k_.size() && kv_heads_ == other.kv_heads_ && head_dim_ == other.head_dim_ &&
                   dtype_ == other.dtype_,
               "KVCache::add_rows: caches of different models (", k_.size(), " vs ", other.k_.size(), " layers, ",
               kv_heads_, " vs ", other.kv_heads_, " kv heads)");
  const int64_t oP = other.prefix_in_buffer_ ? other.prefix_len_ : 0;
  const int64_t held_o = oP + other.len_, len1 = empty ? 0 : len_;
  const int64_t B1 = empty ? 0 : batch_, B2 = other.batch_, B = B1 + B2;
  const int64_t len = std::max(len1, held_o);
  // Headroom for the next decode steps, so a join is not followed at once by a regrowth.
  const int64_t cap = std::max<int64_t>(len + 32, empty ? 0 : capacity_);
  const auto opts = at::TensorOptions().dtype(other.dtype_).device(other.device_);
  // Padded positions hold zeros, not garbage: their attention weight is exactly 0, and 0 · NaN would not be.
  for (size_t l = 0; l < other.k_.size(); ++l) {
    auto k = at::zeros({B, other.kv_heads_, cap, other.head_dim_}, opts), v = at::zeros_like(k);
    if (B1 > 0 && len1 > 0) {
      k.narrow(0, 0, B1).narrow(2, len - len1, len1).copy_(k_[l].narrow(2, 0, len1));
      v.narrow(0, 0, B1).narrow(2, len - len1, len1).copy_(v_[l].narrow(2, 0, len1));
    }
    if (held_o > 0) {
      k.narrow(0, B1, B2).narrow(2, len - held_o, held_o).copy_(other.k_[l].narrow(2, 0, held_o));
      v.narrow(0, B1, B2).narrow(2, len - held_o, held_o).copy_(other.v_[l].narrow(2, 0, held_o));
    }
    if (l < k_.size()) {
      k_[l] = k;
      v_[l] = v;
    } else {
      k_.push_back(k);
      v_.push_back(v);
    }
  }
  auto m = at::zeros({B, cap}, at::TensorOptions().dtype(at::kLong).device(other.device_));
  if (B1 > 0 && len1 > 0) m.narrow(0, 0, B1).narrow(1, len - len1, len1).copy_(mask_.narrow(1, 0, len1));
  if (oP > 0) m.narrow(0, B1, B2).narrow(1, len - held_o, oP).fill_(1);
  if (other.len_ > 0) m.narrow(0, B1, B2).narrow(1, len - other.len_, other.len_).copy_(other.mask_.narrow(1, 0, other.len_));
  mask_ = m;
  batch_ = B;
  kv_heads_ = other.kv_heads_;
  head_dim_ = other.head_dim_;
  dtype_ = other.dtype_;
  device_ = other.device_;
  capacity_ = cap;
  len_ = len;
  prefix_in_buffer_ = false;
}

void KVCache::keep_rows(const std::vector<int64_t>& rows) {
  LOPA_CHECK(prefix_len_ == 0, "KVCache::keep_rows: a cache with a prefix cannot drop rows");
  for (auto r : rows) LOPA_CHECK(r >= 0 && r < batch_, "KVCache::keep_rows: row ", r, " outside the batch of ", batch_);
  const auto idx = at::tensor(rows, at::TensorOptions().dtype(at::kLong)).to(device_);
  auto m = mask_.index_select(0, idx);
  // Leading positions that are padding in every kept row (the rows that needed them left).
  int64_t drop = len_;
  if (!rows.empty() && len_ > 0) {
    auto used = (m.narrow(1, 0, len_) != 0).any(0).to(at::kCPU);
    auto first = used.nonzero();
    drop = first.numel() > 0 ? first[0][0].item<int64_t>() : len_;
  }
  const int64_t keep_cap = capacity_ - drop;
  for (size_t l = 0; l < k_.size(); ++l) {
    k_[l] = k_[l].index_select(0, idx).narrow(2, drop, keep_cap);
    v_[l] = v_[l].index_select(0, idx).narrow(2, drop, keep_cap);
  }
  mask_ = m.narrow(1, drop, keep_cap);
  batch_ = static_cast<int64_t>(rows.size());
  capacity_ = keep_cap;
  len_ -= drop;
}

}  // namespace lopa
