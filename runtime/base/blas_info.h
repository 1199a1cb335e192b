// Which BLAS library LibTorch's matmuls resolve to in this process (Debian's libblas.so.3 is an
// alternatives link: OpenBLAS (openmp/pthread) or the slow reference BLAS), for `lopa info` and benches.
#pragma once

#include <string>

namespace lopa {

// e.g. "OpenBLAS 0.3.21 (openmp) /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"; "unknown" if none mapped.
std::string blas_description();
// Sets LibTorch's intra-op threads to the number of cores this process may use when it is lower
// (Debian's LibTorch defaults to 1), unless OMP_NUM_THREADS is set. Returns the thread count in effect.
int ensure_threads();

}  // namespace lopa
