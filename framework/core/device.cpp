#include "framework/core/device.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "framework/core/error.h"

#ifdef PTUNE_CUDA
#include "framework/core/memory_cuda.h"
#endif

namespace ptune {

namespace {
constexpr size_t kAlignment = 256;

#ifndef PTUNE_CUDA
[[noreturn]] void no_cuda() {
  PTUNE_FAIL("this ptune was built without CUDA (configure with -DPTUNE_CUDA=ON)");
}
#endif
}  // namespace

std::string Device::str() const { return is_cpu() ? "cpu" : fmt::format("cuda:{}", index); }

void* device_allocate(Device device, size_t bytes) {
  if (bytes == 0) bytes = kAlignment;
  if (device.is_cpu()) {
    void* p = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    PTUNE_CHECK(p != nullptr, "out of host memory allocating {} bytes", bytes);
    return p;
  }
#ifdef PTUNE_CUDA
  return cuda::allocate(device.index, bytes);
#else
  no_cuda();
#endif
}

void device_free(Device device, void* ptr) {
  if (ptr == nullptr) return;
  if (device.is_cpu()) {
    std::free(ptr);
    return;
  }
#ifdef PTUNE_CUDA
  cuda::free(device.index, ptr);
#endif
}

void device_copy(Device dst_device, void* dst, Device src_device, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef PTUNE_CUDA
  cuda::copy(dst, src, bytes);
#else
  no_cuda();
#endif
}

void device_memset_zero(Device device, void* ptr, size_t bytes) {
  if (device.is_cpu()) {
    std::memset(ptr, 0, bytes);
    return;
  }
#ifdef PTUNE_CUDA
  cuda::memset_zero(ptr, bytes);
#else
  no_cuda();
#endif
}

}  // namespace ptune
