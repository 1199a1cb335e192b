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

std::pair<at::Tensor, at::Tensor> KVCache::append(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  LOPA_CHECK(k.size(0) == batch_ && k.size(1) == kv_heads_ && k.size(3) == head_dim_, "KVCache: keys of shape ",
             shape_string(k.sizes()), " do not fit a cache of batch ", batch_, ", ", kv_heads_, " kv heads, head_dim ", head_dim_);
  const int64_t t = k.size(2);
  const int64_t base = (prefix_in_buffer_ ? prefix_len_ : 0) + len_;
  // The buffer stores constants; gradients (if any) flow through the current step's k/v and the prefix.
  k_[layer].narrow(2, base, t).copy_(k.detach());
  v_[layer].narrow(2, base, t).copy_(v.detach());
  const bool grad = k.requires_grad() || v.requires_grad() || !prefix_k_.empty();
  if (!grad) return {k_[layer].narrow(2, 0, base + t), v_[layer].narrow(2, 0, base + t)};
  std::vector<at::Tensor> ks, vs;
  if (!prefix_k_.empty()) {
    ks.push_back(prefix_k_[layer]);
    vs.push_back(prefix_v_[layer]);
  }
  if (base > 0) {
    ks.push_back(k_[layer].narrow(2, 0, base));
    vs.push_back(v_[layer].narrow(2, 0, base));
  }
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
