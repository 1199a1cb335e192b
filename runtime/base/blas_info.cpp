// BLAS identification from the process's memory maps, and the intra-op thread count.
#include "runtime/base/blas_info.h"

#include <cstdlib>

#include <dlfcn.h>
#include <sched.h>

#include <ATen/Parallel.h>

#include <filesystem>
#include <fstream>
#include <set>

namespace lopa {

std::string blas_description() {
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> libs;
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const auto base = std::filesystem::path(path).filename().string();
    if (base.find("blas") != std::string::npos || base.find("mkl_core") != std::string::npos) libs.insert(path);
  }
  std::string desc;
  for (const auto& path : libs) {
    std::error_code ec;
    auto real = std::filesystem::canonical(path, ec).string();
    if (ec) real = path;
    std::string kind;
    if (real.find("openblas") != std::string::npos) {
      kind = "OpenBLAS";
      if (real.find("openmp") != std::string::npos) kind += " (openmp)";
      else if (real.find("pthread") != std::string::npos) kind += " (pthread)";
      else if (real.find("serial") != std::string::npos) kind += " (serial)";
    } else if (real.find("mkl") != std::string::npos) {
      kind = "MKL";
    } else if (real.find("blis") != std::string::npos) {
      kind = "BLIS";
    } else if (real.find("/blas/") != std::string::npos || real.find("libblas.so") != std::string::npos) {
      kind = "reference BLAS (netlib, slow: install libopenblas0-openmp)";
    } else {
      continue;  // e.g. cblas wrappers
    }
    if (!desc.empty()) desc += "; ";
    desc += kind + " " + real;
  }
  using get_config_fn = char* (*)();
  if (auto fn = reinterpret_cast<get_config_fn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    if (const char* cfg = fn()) desc += std::string(desc.empty() ? "" : " [") + cfg + (desc.empty() ? "" : "]");
  }
  return desc.empty() ? "unknown" : desc;
}

int ensure_threads() {
  // An explicit OMP_NUM_THREADS is the user's (or the launcher's) choice: several ranks or jobs per
  // node must not each spin up every core, OpenMP barriers spin-wait and collapse under oversubscription.
  if (const char* env = std::getenv("OMP_NUM_THREADS"); env && *env) return at::get_num_threads();
  cpu_set_t set;
  CPU_ZERO(&set);
  int cores = 1;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
  if (at::get_num_threads() < cores) at::set_num_threads(cores);
  return at::get_num_threads();
}

}  // namespace lopa
