// Error checks for CUDA runtime and library calls. Included only by .cu
// files (it pulls in the CUDA headers, which public headers never do),
// first, before any other ptune header.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "framework/core/error.h"

// nvcc's front end cannot evaluate fmt's consteval format-string check, so
// in CUDA translation units the error macros format at run time instead.
namespace ptune::detail {
template <class... A>
std::string cu_format(const char* f, const A&... a) {
  return ::fmt::vformat(f, ::fmt::make_format_args(a...));
}
}  // namespace ptune::detail

#undef PTUNE_CHECK
#define PTUNE_CHECK(cond, ...)                                                              \
  do {                                                                                      \
    if (!(cond)) [[unlikely]]                                                               \
      ::ptune::detail::fail(__FILE__, __LINE__, #cond, ::ptune::detail::cu_format(__VA_ARGS__)); \
  } while (0)
#undef PTUNE_FAIL
#define PTUNE_FAIL(...) ::ptune::detail::fail(__FILE__, __LINE__, nullptr, ::ptune::detail::cu_format(__VA_ARGS__))

#define PTUNE_CUDA_CHECK(expr)                                                                       \
  do {                                                                                               \
    cudaError_t status_ = (expr);                                                                    \
    PTUNE_CHECK(status_ == cudaSuccess, "CUDA error {} in {}: {}", int(status_), #expr,              \
                cudaGetErrorString(status_));                                                        \
  } while (0)

#define PTUNE_CUBLAS_CHECK(expr)                                                                     \
  do {                                                                                               \
    cublasStatus_t status_ = (expr);                                                                 \
    PTUNE_CHECK(status_ == CUBLAS_STATUS_SUCCESS, "cuBLAS error {} in {}: {}", int(status_), #expr,  \
                cublasGetStatusString(status_));                                                     \
  } while (0)

// After every kernel launch: a bad configuration surfaces here, not later.
#define PTUNE_CUDA_LAUNCH_CHECK() PTUNE_CUDA_CHECK(cudaGetLastError())
