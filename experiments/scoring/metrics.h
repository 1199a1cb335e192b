// Metrics the paper reports: accuracy, F1 of the positive class (GLUE's MRPC/QQP F1), and the unbiased
// pass@k estimator of Chen et al. 2021 (Codex paper): pass@k = 1 - C(n-c, k) / C(n, k).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lopa {

// Fraction of positions where predicted == gold (equal-length, non-empty lists).
double accuracy(const std::vector<std::string>& predicted, const std::vector<std::string>& gold);
// F1 = 2 tp / (2 tp + fp + fn) for the class `positive` (0 when tp + fp + fn = 0).
double f1_score(const std::vector<std::string>& predicted, const std::vector<std::string>& gold,
                const std::string& positive);
// Unbiased pass@k for one problem with n samples of which c are correct (1 <= k <= n, 0 <= c <= n), in
// the numerically stable product form 1 - prod_{i=n-c+1..n} (1 - k / i).
double pass_at_k(int64_t n, int64_t c, int64_t k);

}  // namespace lopa
