// Scaffold: the single-rank path. The multi-rank autograd functions land with the distributed runtime.
#include "runtime/tensor_parallel.h"

#include "runtime/error.h"

namespace lopa::tp {
namespace {
void need_single(Communicator& g, const char* what) {
  LOPA_CHECK(g.size() == 1, what, ": tensor parallelism over ", g.size(), " ranks is not built yet");
}
}  // namespace

at::Tensor copy_to_region(const at::Tensor& x, Communicator& g) { need_single(g, "copy_to_region"); return x; }
at::Tensor reduce_from_region(const at::Tensor& x, Communicator& g) { need_single(g, "reduce_from_region"); return x; }
at::Tensor gather_from_region(const at::Tensor& x, Communicator& g) { need_single(g, "gather_from_region"); return x; }
at::Tensor scatter_to_region(const at::Tensor& x, Communicator& g) { need_single(g, "scatter_to_region"); return x; }

at::Tensor column_parallel_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, Communicator& g,
                                  bool) {
  need_single(g, "column_parallel_linear");
  return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
}
at::Tensor row_parallel_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, Communicator& g) {
  need_single(g, "row_parallel_linear");
  return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
}
at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& w, int64_t, Communicator& g) {
  need_single(g, "vocab_parallel_embedding");
  return at::embedding(w, ids);
}
at::Tensor vocab_parallel_cross_entropy(const at::Tensor& logits, const at::Tensor& targets, int64_t, Communicator& g,
                                        int64_t ignore_index) {
  need_single(g, "vocab_parallel_cross_entropy");
  return at::cross_entropy_loss(logits.to(at::kFloat), targets, {}, at::Reduction::Mean, ignore_index);
}

}  // namespace lopa::tp
