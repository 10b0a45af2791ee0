#include <cuda_runtime.h>

#include "framework/core/error.h"
#include "framework/core/memory_cuda.h"

#define PTUNE_CUDA_CHECK(expr)                                                        \
  do {                                                                                \
    cudaError_t status_ = (expr);                                                     \
    PTUNE_CHECK(status_ == cudaSuccess, "CUDA error: {}", cudaGetErrorString(status_)); \
  } while (0)

namespace ptune::cuda {

void* allocate(int device_index, size_t bytes) {
  PTUNE_CUDA_CHECK(cudaSetDevice(device_index));
  void* p = nullptr;
  PTUNE_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void free(int device_index, void* ptr) {
  cudaSetDevice(device_index);
  cudaFree(ptr);  // never throws from a destructor path
}

void copy(void* dst, const void* src, size_t bytes) {
  PTUNE_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

void memset_zero(void* ptr, size_t bytes) { PTUNE_CUDA_CHECK(cudaMemset(ptr, 0, bytes)); }

}  // namespace ptune::cuda
