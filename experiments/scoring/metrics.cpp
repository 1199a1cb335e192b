#include "experiments/scoring/metrics.h"

#include "runtime/base/error.h"

namespace lopa {

double accuracy(const std::vector<std::string>& predicted, const std::vector<std::string>& gold) {
  LOPA_CHECK(predicted.size() == gold.size(), "accuracy: ", predicted.size(), " predictions for ", gold.size(), " labels");
  LOPA_CHECK(!gold.empty(), "accuracy: no examples");
  int64_t right = 0;
  for (size_t i = 0; i < gold.size(); ++i) right += predicted[i] == gold[i];
  return (double)right / (double)gold.size();
}

double f1_score(const std::vector<std::string>& predicted, const std::vector<std::string>& gold,
                const std::string& positive) {
  LOPA_CHECK(predicted.size() == gold.size(), "f1: ", predicted.size(), " predictions for ", gold.size(), " labels");
  int64_t tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < gold.size(); ++i) {
    const bool p = predicted[i] == positive, g = gold[i] == positive;
    tp += p && g;
    fp += p && !g;
    fn += !p && g;
  }
  if (tp + fp + fn == 0) return 0.0;
  return 2.0 * tp / (2.0 * tp + fp + fn);
}

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  LOPA_CHECK(k >= 1 && k <= n, "pass@k: need 1 <= k <= n (k = ", k, ", n = ", n, ")");
  LOPA_CHECK(c >= 0 && c <= n, "pass@k: need 0 <= c <= n (c = ", c, ", n = ", n, ")");
  if (n - c < k) return 1.0;
  double prod = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) prod *= 1.0 - (double)k / (double)i;
  return 1.0 - prod;
}

}  // namespace lopa
