// KVCache: per-layer keys and values of the positions seen so far (generation), preallocated for a
// capacity and grown by doubling, plus an optional trainable prefix (prefix tuning) that every query
// attends to. Shapes: B × kv_heads_local × positions × head_dim. The cache also keeps the attention
// mask of its cached positions, so a later forward may pass the mask of its new tokens only.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace lopa {

class CausalLM;

class KVCache {
 public:
  KVCache() = default;
  // Empty cache for `batch` sequences of up to `capacity` new positions (grows when exceeded).
  KVCache(int64_t num_layers, int64_t batch, int64_t kv_heads_local, int64_t head_dim, int64_t capacity,
          at::ScalarType dtype, c10::Device device);
  static KVCache for_model(const CausalLM& model, int64_t batch, int64_t capacity);

  // Prefix tuning: per-layer keys/values B × kv_heads_local × P × head_dim (B may be 1: broadcast), may
  // require grad. Always visible to every query; counted in positions like HF past_key_values (the first
  // token after a prefix of P has position P). Must be set before the first forward.
  void set_prefix(std::vector<at::Tensor> keys, std::vector<at::Tensor> values);
  int64_t prefix_length() const { return prefix_len_; }

  int64_t length() const { return len_; }  // cached positions after the prefix
  int64_t batch() const { return batch_; }
  int64_t num_layers() const { return static_cast<int64_t>(k_.size()); }
  // Mask of the cached positions (B × length, 1 = real), valid after a forward.
  at::Tensor mask() const { return mask_.defined() ? mask_.narrow(1, 0, len_) : mask_; }
  void clear() { len_ = 0; }
  // Keys / values of `layer` held so far: B × kv × (P + length) × hd (a view; prefix first).
  at::Tensor keys(int64_t layer) const;
  at::Tensor values(int64_t layer) const;

  // --- used by the model's forward ---
  // Makes room for `t` more positions (all layers).
  void reserve(int64_t t);
  // Writes k/v (B × kv × t × hd) of `layer` at [length, length + t); returns the keys/values to attend
  // over: prefix (if any) + cached + new, B × kv × (P + length + t) × hd.
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  // The same keys/values to attend over, without writing k/v: a bidirectional encoder's forward, which
  // can never reuse them (its cache holds a prefix only).
  std::pair<at::Tensor, at::Tensor> attend(int64_t layer, const at::Tensor& k, const at::Tensor& v) const;
  // Records the mask of the t new positions (B × t) and advances length by t (after all layers ran).
  void advance(const at::Tensor& new_mask);

  // --- continuous batching (lopa serve): rows join and leave a running batch ---
  // Appends the rows of `other` (a cache of the same model, frozen prefix if any) to this one, the rows
  // right-aligned on one timeline: the shorter side is left-padded with masked, zero positions, and
  // other's prefix becomes ordinary real positions of its rows (so positions still count it, as with
  // set_prefix). This cache must have no prefix; an empty (default or batch-0) cache takes other's shape.
  void add_rows(const KVCache& other);
  // Keeps rows[i] as row i (in that order) and drops the leading positions no kept row uses.
  void keep_rows(const std::vector<int64_t>& rows);

 private:
  int64_t batch_ = 0, kv_heads_ = 0, head_dim_ = 0, capacity_ = 0, len_ = 0, prefix_len_ = 0;
  at::ScalarType dtype_ = at::kFloat;
  c10::Device device_ = c10::Device(c10::kCPU);
  std::vector<at::Tensor> k_, v_;                // B × kv × capacity × hd
  std::vector<at::Tensor> prefix_k_, prefix_v_;  // B × kv × P × hd (trainable path: concatenated)
  bool prefix_in_buffer_ = false;                // prefix copied into slots [0, P) of k_/v_ (no grad)
  at::Tensor mask_;                              // B × capacity (int64)
};

}  // namespace lopa
