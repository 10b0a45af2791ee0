// The kernels of ops::head_rms_norm_* (Qwen3's per-head q/k RMSNorm, in
// place in the fused qkv's columns): one warp per head vector of d values
// (Qwen3: d = 128, 4 a lane), grid-stride over the rows·heads vectors;
// lanes stride a vector, so a warp's accesses are contiguous.
//
// Plain enough C++ to compile on the host as well: the includer provides
// to_f, from_f<T> and warp_sum — common.cuh on the GPU, the emulation of
// tests/emulation on the CPU, where CI runs these kernels without a GPU.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace ptune::ops::cuda::head_norm {

constexpr int kThreads = 256;

// Blocks for `vectors` head vectors, a warp each (grid-stride beyond).
inline unsigned blocks(int64_t vectors) {
  return unsigned(std::clamp<int64_t>((vectors + kThreads / 32 - 1) / (kThreads / 32), 1, 65535 * 8));
}

// x (rows, width): vector k = row·heads + h is row k / heads, columns
// col + (k % heads)·d …; saves it to saved (k, d) and rstd[k], then writes
// x·rstd·w over it. The second pass re-reads x from `saved`, which the same
// lane wrote (an L1/L2 hit).
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
// columns. Each lane rewrites only the elements it read.
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
