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

// for (k = every index of [0, n) this thread owns): grid-stride over n.
#define PTUNE_GRID_STRIDE(k, n) \
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < (n); k += int64_t(gridDim.x) * blockDim.x)

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

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

// core/rng.cpp's philox4x32 + philox_uniform, on the device. One block of
// 4 words serves indices 4k .. 4k+3, so kernels that draw for consecutive
// indices (philox_uniforms) run the rounds once per 4 elements.
__device__ __forceinline__ uint4 philox4x32(uint64_t seed, uint64_t counter_lo) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
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
  return make_uint4(c0, c1, c2, c3);
}

// Word `index & 3` of a block, as a uniform in [0, 1) with 24 bits. Selects
// (not an indexed array) so the block stays in registers.
__device__ __forceinline__ float philox_word_uniform(uint4 words, uint64_t index) {
  const uint32_t j = uint32_t(index & 3);
  const uint32_t w = j == 0 ? words.x : j == 1 ? words.y : j == 2 ? words.z : words.w;
  return float(w >> 8) * (1.0f / 16777216.0f);
}

__device__ __forceinline__ float philox_uniform(uint64_t seed, uint64_t index) {
  return philox_word_uniform(philox4x32(seed, index >> 2), index);
}

// u[k] = philox_uniform(seed, first + k) for k < N, the rounds run once per
// block of 4 indices touched (N = 8 at an unaligned first: 3 blocks, not 8).
template <int N>
__device__ __forceinline__ void philox_uniforms(uint64_t seed, uint64_t first, float (&u)[N]) {
  uint4 words = philox4x32(seed, first >> 2);
#pragma unroll
  for (int k = 0; k < N; ++k) {
    const uint64_t index = first + uint64_t(k);
    if (k > 0 && (index & 3) == 0) words = philox4x32(seed, index >> 2);
    u[k] = philox_word_uniform(words, index);
  }
}

// N consecutive elements of T in registers, moved with 16-byte accesses
// where N·sizeof(T) allows (8 bf16 or 4 f32: one access; 8 f32: two), else
// 8- / 4-byte ones, else element by element (N = 1, the scalar fallback).
// The pointer must be aligned to min(16, N·sizeof(T)) bytes: launchers check
// vector_aligned() on every operand and fall back to N = 1 otherwise.
template <class T, int N>
struct Vec {
  static constexpr int kBytes = N * int(sizeof(T));
  alignas(kBytes >= 16 ? 16 : kBytes) T v[N];

  __device__ __forceinline__ static Vec load(const T* p) {
    Vec r;
    if constexpr (kBytes % 16 == 0) {
#pragma unroll
      for (int k = 0; k < kBytes / 16; ++k) reinterpret_cast<uint4*>(r.v)[k] = reinterpret_cast<const uint4*>(p)[k];
    } else if constexpr (kBytes == 8) {
      *reinterpret_cast<uint2*>(r.v) = *reinterpret_cast<const uint2*>(p);
    } else if constexpr (kBytes == 4) {
      *reinterpret_cast<uint32_t*>(r.v) = *reinterpret_cast<const uint32_t*>(p);
    } else {
#pragma unroll
      for (int k = 0; k < N; ++k) r.v[k] = p[k];
    }
    return r;
  }
  __device__ __forceinline__ void store(T* p) const {
    if constexpr (kBytes % 16 == 0) {
#pragma unroll
      for (int k = 0; k < kBytes / 16; ++k) reinterpret_cast<uint4*>(p)[k] = reinterpret_cast<const uint4*>(v)[k];
    } else if constexpr (kBytes == 8) {
      *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(v);
    } else if constexpr (kBytes == 4) {
      *reinterpret_cast<uint32_t*>(p) = *reinterpret_cast<const uint32_t*>(v);
    } else {
#pragma unroll
      for (int k = 0; k < N; ++k) p[k] = v[k];
    }
  }
  // Element k in f32, and its f32 → T rounded store.
  __device__ __forceinline__ float operator[](int k) const { return to_f(v[k]); }
  __device__ __forceinline__ void set(int k, float x) { v[k] = from_f<T>(x); }
};

// Elements per 16-byte access for the narrowest of the types (8 when any
// is bf16), so mixed f32/bf16 operands step through the same indices.
template <class T, class... Ts>
constexpr int vec_width() {
  size_t narrowest = sizeof(T);
  ((narrowest = sizeof(Ts) < narrowest ? sizeof(Ts) : narrowest), ...);
  return int(16 / narrowest);
}

// True when every pointer (null ones ignored) is 16-byte aligned.
template <class... Ps>
inline bool vector_aligned(const Ps*... p) {
  return ((p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0) && ...);
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
