// Which GEMM kernels OpenBLAS runs.
//
// Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels by CPU model
// number and falls back to SSE3 "Prescott" kernels on CPUs it does not know,
// such as virtualised Xeons that report a generic model: GEMMs then run at
// a third of the speed or less. The choice is made when the library loads, so the fix
// is to restart the process with OPENBLAS_CORETYPE set (launch/main.cpp).
#pragma once

#include <optional>
#include <string>

namespace ptune::ops {

// The kernel set OpenBLAS chose ("Haswell", "SkylakeX", "Prescott", …).
std::string blas_core_name();
// A better OPENBLAS_CORETYPE for this CPU when OpenBLAS fell back to a
// generic kernel and the user has not chosen one; nullopt otherwise.
std::optional<std::string> blas_core_override();

}  // namespace ptune::ops
