// Rotary position embeddings on the GPU, in place on the fused qkv
// (B, T, H·D + 2·KVH·D), rotate_half layout over the head's first R ≤ D
// columns: pair (i, i + R/2) of every query and key head turns by
// a = pos · inv_freq[i] (cos and sin times `scale`, LongRoPE's factor).
// Value and pass-through columns are never read or written. Both
// directions overwrite (backward turns by −a: the transpose), exactly as
// ops/cpu/rope_cpu.cpp.
//
// One thread per (token, i < R/2): it computes cos a, sin a once, in f32
// with the CPU's formula (f32 product, accurate sincosf, so f32 matches to
// rounding), and applies them to pair i of all H + KVH rotated heads.
// The rope_vec candidate (ops/candidates.h) gives a thread 16 bytes of
// pairs instead (8 in bf16, 4 in f32): 16-byte loads and stores instead of
// 2- or 4-byte ones, the same arithmetic per element.
#include "framework/ops/cuda/common.cuh"

#include <cstring>

#include "framework/ops/candidates.h"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

constexpr int kThreads = 256;

// x (BT, width); pos (BT) i32; inv (half = R/2) f32. sign +1 forward, −1 backward.
template <class T>
__global__ void rope_kernel(T* x, const int32_t* pos, const float* inv, int64_t bt_count, int64_t width,
                            int64_t head_dim, int64_t half, int64_t rotated_heads, float sign, float scale) {
  const int64_t n = bt_count * half;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t bt = k / half, i = k - bt * half;
    const float a = float(pos[bt]) * inv[i];
    float s, c;
    sincosf(a, &s, &c);
    s *= sign * scale;
    c *= scale;
    T* v = x + bt * width + i;  // pair i of query head 0; the k heads follow the q heads
    for (int64_t h = 0; h < rotated_heads; ++h, v += head_dim) {
      const float x1 = to_f(v[0]), x2 = to_f(v[half]);
      v[0] = from_f<T>(x1 * c - x2 * s);
      v[half] = from_f<T>(x2 * c + x1 * s);
    }
  }
}

// The rope_vec kernel: thread k owns pairs [kVec·j, kVec·j + kVec) of one
// token (j < half / kVec); needs half, the head dim, width and the base
// 16-byte aligned.
template <class T>
__global__ void rope_vec_kernel(T* x, const int32_t* pos, const float* inv, int64_t bt_count, int64_t width,
                                int64_t head_dim, int64_t half, int64_t rotated_heads, float sign, float scale) {
  constexpr int kVec = int(16 / sizeof(T));
  const int64_t chunks = half / kVec;
  const int64_t n = bt_count * chunks;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t bt = k / chunks, i0 = (k - bt * chunks) * kVec;
    float c[kVec], s[kVec];
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      sincosf(float(pos[bt]) * inv[i0 + e], &s[e], &c[e]);
      s[e] *= sign * scale;
      c[e] *= scale;
    }
    T* v = x + bt * width + i0;
    for (int64_t h = 0; h < rotated_heads; ++h, v += head_dim) {
      uint4 lo = *reinterpret_cast<const uint4*>(v), hi = *reinterpret_cast<const uint4*>(v + half);
      T a[kVec], b[kVec];
      memcpy(a, &lo, 16);
      memcpy(b, &hi, 16);
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        const float x1 = to_f(a[e]), x2 = to_f(b[e]);
        a[e] = from_f<T>(x1 * c[e] - x2 * s[e]);
        b[e] = from_f<T>(x2 * c[e] + x1 * s[e]);
      }
      memcpy(&lo, a, 16);
      memcpy(&hi, b, 16);
      *reinterpret_cast<uint4*>(v) = lo;
      *reinterpret_cast<uint4*>(v + half) = hi;
    }
  }
}

void rotate(const Tensor& qkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg,
            float sign, float scale, const char* op, const Stream& stream) {
  check_cuda_tensor(qkv, "qkv", op);
  check_cuda_tensor(position_ids, "position_ids", op);
  check_cuda_tensor(inv_freq, "inv_freq", op);
  PTUNE_CHECK(position_ids.device() == qkv.device() && inv_freq.device() == qkv.device(),
              "{}: qkv on {}, position_ids on {}, inv_freq on {} (one device)", op, qkv.device().str(),
              position_ids.device().str(), inv_freq.device().str());
  PTUNE_CHECK(qkv.dim() == 3 && qkv.size(2) == cfg.qkv_width(), "{}: qkv {} for qkv width {}", op,
              qkv.shape().str(), cfg.qkv_width());
  const int64_t B = qkv.size(0), T = qkv.size(1), half = inv_freq.numel();
  check_tensor(position_ids, "position_ids", {B, T}, DType::kI32);
  PTUNE_CHECK(half >= 1 && 2 * half <= cfg.head_dim, "{}: inv_freq of {} frequencies for head dim {} (at most D/2)",
              op, half, cfg.head_dim);
  check_tensor(inv_freq, "inv_freq", {half});
  const int64_t n = B * T * half;
  if (n == 0) return;
  const int64_t vec = int64_t(16 / dtype_size(qkv.dtype()));
  if (candidate_enabled(Candidate::kRopeVec) && half % vec == 0 && cfg.head_dim % vec == 0 &&
      cfg.qkv_width() % vec == 0 && reinterpret_cast<uintptr_t>(qkv.raw()) % 16 == 0) {
    PTUNE_FLOAT_DISPATCH(qkv.dtype(), X, op,
                         rope_vec_kernel<X><<<blocks_for(n / vec, kThreads), kThreads, 0, raw(stream)>>>(
                             static_cast<X*>(qkv.raw()), static_cast<const int32_t*>(position_ids.raw()),
                             static_cast<const float*>(inv_freq.raw()), B * T, cfg.qkv_width(), cfg.head_dim,
                             half, cfg.heads + cfg.kv_heads, sign, scale));
    PTUNE_CUDA_LAUNCH_CHECK();
    return;
  }
  PTUNE_FLOAT_DISPATCH(qkv.dtype(), X, op,
                       rope_kernel<X><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
                           static_cast<X*>(qkv.raw()), static_cast<const int32_t*>(position_ids.raw()),
                           static_cast<const float*>(inv_freq.raw()), B * T, cfg.qkv_width(), cfg.head_dim,
                           half, cfg.heads + cfg.kv_heads, sign, scale));
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace

void rope_forward(const Tensor& qkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg,
                  float scale, const Stream& stream) {
  rotate(qkv, position_ids, inv_freq, cfg, 1.0f, scale, "rope_forward", stream);
}

void rope_backward(const Tensor& dqkv, const Tensor& position_ids, const Tensor& inv_freq,
                   const AttentionConfig& cfg, float scale, const Stream& stream) {
  rotate(dqkv, position_ids, inv_freq, cfg, -1.0f, scale, "rope_backward", stream);
}

}  // namespace ptune::ops::cuda
