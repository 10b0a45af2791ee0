// The kernels of ops::head_rms_norm_* (Qwen3's per-head q/k RMSNorm, in
// place in the fused qkv's columns): one warp per head vector of d values,
// grid-stride over the rows·heads vectors.
//
// Two paths, same math:
//  - the lane kernels (forward_lane_kernel / backward_lane_kernel), for
//    d = 32·PER with PER in {1, 2, 4, 8} (d = 32, 64, 128, 256; Qwen3: 128)
//    and operands aligned to a lane's PER elements: lane l owns the
//    contiguous elements [l·PER, l·PER + PER) and moves them with one access
//    of PER·sizeof(T) bytes (bf16 d = 128: 8 bytes; d = 256: 16), loaded up
//    front into registers, so a vector costs one load of x (two in the
//    backward: dy and saved) and one store, with w loaded once per warp.
//    On an H100 at Qwen3-0.6B's shape (4096 rows, 16 q + 8 k heads, bf16)
//    that moves ~2.2 TB/s forward and ~2.4 TB/s backward, against ~1.2 and
//    ~1.55 for the strided kernels; two or four vectors a warp in flight
//    were slower (2.1 / 2.0 TB/s), so a warp takes one;
//  - the strided kernels (forward_kernel / backward_kernel) for any other d
//    or alignment: lanes stride a vector element by element.
//
// Plain enough C++ to compile on the host as well: the includer provides
// to_f, from_f<T> and warp_sum — common.cuh on the GPU, the emulation of
// tests/emulation on the CPU, where CI runs these kernels without a GPU.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace ptune::ops::cuda::head_norm {

constexpr int kThreads = 256;

// Blocks for `vectors` head vectors, a warp each (grid-stride beyond).
inline unsigned blocks(int64_t vectors) {
  return unsigned(std::clamp<int64_t>((vectors + kThreads / 32 - 1) / (kThreads / 32), 1, 65535 * 8));
}

// N consecutive elements of T as one aggregate, so that a copy is one access
// of N·sizeof(T) bytes (two 16-byte ones for 8 f32). Its alignment,
// min(16, N·sizeof(T)) bytes, is what lane_path() checks of every operand.
template <class T, int N>
struct alignas(N * sizeof(T) >= 16 ? 16 : N * sizeof(T)) Pack {
  T v[N];
};
template <int N, class T>
__device__ __forceinline__ Pack<std::remove_const_t<T>, N> load(T* p) {
  return *reinterpret_cast<const Pack<std::remove_const_t<T>, N>*>(p);
}
template <int N, class T>
__device__ __forceinline__ void store(T* p, const Pack<T, N>& v) {
  *reinterpret_cast<Pack<T, N>*>(p) = v;
}

// Elements a lane owns in the lane kernels for head dim d (x, saved of T,
// w of W, rows `width` apart from column `col`), or 0 where they cannot run:
// d not 32·{1, 2, 4, 8}, or an operand, the row stride or `col` off the
// alignment of a lane's elements (vector starts are d apart, a multiple of it).
template <class T, class W>
inline int lane_path(int64_t d, const T* x, const T* saved, const W* w, int64_t width, int64_t col) {
  if (d != 32 && d != 64 && d != 128 && d != 256) return 0;
  const int per = int(d / 32);
  const auto aligned = [per](const void* p, size_t size) {
    const size_t bytes = std::min<size_t>(16, size_t(per) * size);
    return reinterpret_cast<uintptr_t>(p) % bytes == 0;
  };
  const size_t bytes_t = std::min<size_t>(16, size_t(per) * sizeof(T));
  const bool ok = aligned(x, sizeof(T)) && aligned(saved, sizeof(T)) && aligned(w, sizeof(W)) &&
                  size_t(width) * sizeof(T) % bytes_t == 0 && size_t(col) * sizeof(T) % bytes_t == 0;
  return ok ? per : 0;
}

// Calls f(std::integral_constant<int, PER>) for PER = per in {1, 2, 4, 8}
// (lane_path()'s answer): the launcher and the emulation test pick the same
// instantiation.
template <class F>
inline void with_per(int per, F&& f) {
  switch (per) {
    case 1: f(std::integral_constant<int, 1>()); break;
    case 2: f(std::integral_constant<int, 2>()); break;
    case 4: f(std::integral_constant<int, 4>()); break;
    case 8: f(std::integral_constant<int, 8>()); break;
    default: break;
  }
}

// x (rows, width): vector k = row·heads + h is row k / heads, columns
// col + (k % heads)·d …; saves it to saved (k, d) and rstd[k], then writes
// x·rstd·w over it. d = 32·PER; each lane's PER elements stay in registers
// from load to store.
template <class T, class W, int PER>
__global__ void __launch_bounds__(kThreads)
    forward_lane_kernel(T* x, T* saved, float* rstd, const W* w, int64_t vectors, int64_t heads, int64_t width,
                        int64_t col, float eps) {
  constexpr int64_t d = 32 * PER;
  const int lane = int(threadIdx.x) & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  const Pack<W, PER> wl = load<PER>(w + lane * PER);
  // k is the same for every lane of a warp: the warp enters and leaves together.
  for (int64_t k = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; k < vectors; k += warps) {
    T* xk = x + (k / heads) * width + col + (k % heads) * d + lane * PER;
    const Pack<T, PER> xl = load<PER>(xk);
    store(saved + k * d + lane * PER, xl);
    float v = 0.0f;
#pragma unroll
    for (int i = 0; i < PER; ++i) v += to_f(xl.v[i]) * to_f(xl.v[i]);
    const float r = 1.0f / sqrtf(warp_sum(v) / float(d) + eps);
    Pack<T, PER> y;
#pragma unroll
    for (int i = 0; i < PER; ++i) y.v[i] = from_f<T>(to_f(xl.v[i]) * r * to_f(wl.v[i]));
    store(xk, y);
    if (lane == 0) rstd[k] = r;
  }
}

// As forward_lane_kernel, for any d and alignment: lanes stride a vector, so
// a warp's accesses are contiguous. The second pass re-reads x from `saved`,
// which the same lane wrote (an L1/L2 hit).
template <class T, class W>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(T* x, T* saved, float* rstd, const W* w, int64_t vectors, int64_t heads, int64_t width,
                   int64_t col, int64_t d, float eps) {
  const int lane = int(threadIdx.x) & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  // k is the same for every lane of a warp: the warp enters and leaves together.
  for (int64_t k = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; k < vectors; k += warps) {
    T* xk = x + (k / heads) * width + col + (k % heads) * d;
    T* sk = saved + k * d;
    float v = 0.0f;
    for (int64_t j = lane; j < d; j += 32) {
      const T xj = xk[j];
      sk[j] = xj;
      v += to_f(xj) * to_f(xj);
    }
    const float r = 1.0f / sqrtf(warp_sum(v) / float(d) + eps);
    for (int64_t j = lane; j < d; j += 32) xk[j] = from_f<T>(to_f(sk[j]) * r * to_f(w[j]));
    if (lane == 0) rstd[k] = r;
  }
}

// dx = r·(g − x̂·mean(g·x̂)), x̂ = x·r, g = dy·w, written over dy in dx's
// columns; d = 32·PER, a lane's dy and saved loaded up front.
template <class T, class W, int PER>
__global__ void __launch_bounds__(kThreads)
    backward_lane_kernel(T* dx, const T* saved, const float* rstd, const W* w, int64_t vectors, int64_t heads,
                         int64_t width, int64_t col) {
  constexpr int64_t d = 32 * PER;
  const int lane = int(threadIdx.x) & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  const Pack<W, PER> wl = load<PER>(w + lane * PER);
  for (int64_t k = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; k < vectors; k += warps) {
    T* dk = dx + (k / heads) * width + col + (k % heads) * d + lane * PER;
    const Pack<T, PER> dl = load<PER>(dk), sl = load<PER>(saved + k * d + lane * PER);
    const float r = rstd[k];
    float gx = 0.0f;
#pragma unroll
    for (int i = 0; i < PER; ++i) gx += to_f(dl.v[i]) * to_f(wl.v[i]) * to_f(sl.v[i]) * r;
    const float gx_mean = warp_sum(gx) / float(d);
    Pack<T, PER> g;
#pragma unroll
    for (int i = 0; i < PER; ++i)
      g.v[i] = from_f<T>(r * (to_f(dl.v[i]) * to_f(wl.v[i]) - to_f(sl.v[i]) * r * gx_mean));
    store(dk, g);
  }
}

// As backward_lane_kernel, for any d and alignment. Each lane rewrites only
// the elements it read.
template <class T, class W>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(T* dx, const T* saved, const float* rstd, const W* w, int64_t vectors, int64_t heads,
                    int64_t width, int64_t col, int64_t d) {
  const int lane = int(threadIdx.x) & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t k = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; k < vectors; k += warps) {
    T* dk = dx + (k / heads) * width + col + (k % heads) * d;
    const T* sk = saved + k * d;
    const float r = rstd[k];
    float gx = 0.0f;
    for (int64_t j = lane; j < d; j += 32) gx += to_f(dk[j]) * to_f(w[j]) * to_f(sk[j]) * r;
    const float gx_mean = warp_sum(gx) / float(d);
    for (int64_t j = lane; j < d; j += 32)
      dk[j] = from_f<T>(r * (to_f(dk[j]) * to_f(w[j]) - to_f(sk[j]) * r * gx_mean));
  }
}

}  // namespace ptune::ops::cuda::head_norm
