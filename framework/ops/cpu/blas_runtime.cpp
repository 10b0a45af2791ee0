#include "framework/ops/cpu/blas_runtime.h"

#include <cblas.h>

#include <cstdlib>

namespace ptune::ops {

std::string blas_core_name() { return openblas_get_corename(); }

std::optional<std::string> blas_core_override() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return std::nullopt;  // the user decided
  const std::string core = blas_core_name();
  const bool generic = core == "Prescott" || core == "Core2" || core == "Penryn" || core == "Dunnington" ||
                       core == "Nehalem" || core == "Sandybridge";
  // Haswell kernels (AVX2 + FMA) run on every later x86-64 CPU; the AVX-512
  // kernels of this OpenBLAS release are not trusted on unknown models.
  if (generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return std::nullopt;
}

}  // namespace ptune::ops
