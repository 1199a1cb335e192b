// Projection: one linear layer y = x Wᵀ + b of the frozen FM on this rank, column-parallel (its output
// features split over the tp ranks; input replicated) or row-parallel (its input features split; the
// partial products all-reduced, the bias added once), with an optional adapter (LoRA) on its output.
// Methods reach projections by role, whatever the family calls the module that holds them.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/distributed/communicator.h"
#include "runtime/model/linear_adapter.h"

namespace lopa {

// What a projection does in its block. Fused HF modules (qkv_proj, c_attn, gate_up_proj) hold several.
enum class Role { Q, K, V, O, Gate, Up, Down, FcIn, FcOut };
constexpr int kNumRoles = 9;
const char* role_name(Role r);                        // "q", "k", "v", "o", "gate", "up", "down", "fc_in", "fc_out"
std::optional<Role> parse_role(const std::string& s);  // the names above, also "q_proj" … "down_proj"

struct Projection {
  std::string module;  // HF module whose weight holds it, e.g. "transformer.h.3.attn.c_attn"
  Role role = Role::Q;
  bool row_parallel = false;
  at::Tensor weight;  // out_local × in_local
  at::Tensor bias;    // out_local (column-parallel) or out (row-parallel); may be undefined
  int64_t in_features = 0, out_features = 0;  // global
  int64_t in_local = 0, out_local = 0;
  int64_t shard_begin = 0;  // first global output feature (column-parallel) or input feature (row-parallel) here
  // Output feature i of the projection is row module_rows[i] of its module's output (size out_features).
  std::vector<int64_t> module_rows;
  std::shared_ptr<LinearAdapter> adapter;  // delta(x_local) added to the local output before any reduction

  bool defined() const { return weight.defined(); }
  at::Tensor forward(const at::Tensor& x, Communicator& tp) const;
};

}  // namespace lopa
