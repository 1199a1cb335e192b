#include "runtime/base/host_allocator.h"

#include <dlfcn.h>

namespace lopa {

std::string host_allocator() {
  // tc_malloc is tcmalloc's own entry point; its presence means it has replaced malloc too.
  return dlsym(RTLD_DEFAULT, "tc_malloc") ? "tcmalloc" : "glibc malloc";
}

}  // namespace lopa
