// Shared device helpers for the op kernels: dtype dispatch, f32 <-> bf16
// loads and stores, block reductions, the Philox uniform that matches
// core/rng.cpp bit for bit, and the launch geometry.
#pragma once

#include "framework/core/cuda_check.h"  // first: it redefines the error macros

#include <cuda_bf16.h>

#include <cstdint>


#include "framework/core/stream.h"
#include "framework/core/tensor.h"

namespace ptune::ops::cuda {

using bf16 = __nv_bfloat16;

inline cudaStream_t raw(const Stream& s) { return static_cast<cudaStream_t>(s.handle()); }

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
template <class T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }

// Calls body with T = float or bf16 according to the tensor's dtype.
#define PTUNE_FLOAT_DISPATCH(dtype, T, op, ...)                                                  \
  do {                                                                                           \
    switch (dtype) {                                                                             \
      case ::ptune::DType::kF32: { using T = float; __VA_ARGS__; break; }                        \
      case ::ptune::DType::kBF16: { using T = ::ptune::ops::cuda::bf16; __VA_ARGS__; break; }    \
      default: PTUNE_FAIL("{}: dtype {} is not supported on CUDA (f32 or bf16)", op,             \
                          ::ptune::dtype_name(dtype));                                           \
    }                                                                                            \
  } while (0)

inline void check_cuda_tensor(const Tensor& t, const char* what, const char* op) {
  PTUNE_CHECK(t.device().is_cuda(), "{}: {} lives on {}, expected a CUDA tensor", op, what, t.device().str());
}

inline unsigned blocks_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 65535 * 8 ? (b < 1 ? 1 : b) : 65535 * 8);  // grid-stride loops cover the rest
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread
// gets the result. `shared` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = lane < warps ? shared[lane] : 0.0f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(v);
}

// core/rng.cpp's philox4x32 + philox_uniform, on the device.
__device__ __forceinline__ float philox_uniform(uint64_t seed, uint64_t index) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  const uint64_t counter_lo = index >> 2;
  uint32_t c0 = uint32_t(counter_lo), c1 = uint32_t(counter_lo >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(kM0, c0), lo0 = kM0 * c0;
    const uint32_t hi1 = __umulhi(kM1, c2), lo1 = kM1 * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  const uint32_t words[4] = {c0, c1, c2, c3};
  return float(words[index & 3] >> 8) * (1.0f / 16777216.0f);
}

// Scratch from the caching allocator, returned on scope exit (stream
// order: the default stream serialises the free against later kernels).
class Scratch {
 public:
  Scratch(Device device, const Shape& shape, DType dtype) : t_(Tensor::empty(shape, dtype, device)) {}
  const Tensor& tensor() const { return t_; }
  template <class T>
  T* data() const { return t_.data<T>(); }

 private:
  Tensor t_;
};

}  // namespace ptune::ops::cuda
