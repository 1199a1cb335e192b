// Which malloc serves this process's CPU tensors: the lopa program links tcmalloc (apps/CMakeLists.txt)
// because glibc's malloc page-faults large activations in afresh every training step; benches and
// `lopa info` report it so that a figure can be traced to its allocator.
#pragma once

#include <string>

namespace lopa {

// "tcmalloc" when tcmalloc's symbols are in the process (linked or LD_PRELOADed), else "glibc malloc".
std::string host_allocator();

}  // namespace lopa
