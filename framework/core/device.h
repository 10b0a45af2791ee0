// Where a tensor's storage lives, and the byte-level memory primitives
// every backend provides (CPU here; CUDA in core/memory_cuda.cu).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ptune {

enum class DeviceType : uint8_t { kCPU, kCUDA };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {DeviceType::kCUDA, i}; }
  bool is_cpu() const { return type == DeviceType::kCPU; }
  bool is_cuda() const { return type == DeviceType::kCUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const;
};

// 256-byte aligned (cache lines on the CPU, vector loads on the GPU).
void* device_allocate(Device device, size_t bytes);
void device_free(Device device, void* ptr);
// Copies between any two devices; synchronous.
void device_copy(Device dst_device, void* dst, Device src_device, const void* src, size_t bytes);
void device_memset_zero(Device device, void* ptr, size_t bytes);

}  // namespace ptune
