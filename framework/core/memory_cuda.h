// CUDA memory primitives behind core/device.h. Plain C++ declarations: the
// CUDA headers stay inside memory_cuda.cu.
#pragma once

#include <cstddef>

namespace ptune::cuda {
void* allocate(int device_index, size_t bytes);
void free(int device_index, void* ptr);
void copy(void* dst, const void* src, size_t bytes);  // cudaMemcpyDefault
void memset_zero(void* ptr, size_t bytes);
}  // namespace ptune::cuda
