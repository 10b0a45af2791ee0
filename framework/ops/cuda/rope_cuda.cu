// Rotary position embeddings on the GPU, in place on the fused qkv
// (B, T, H·D + 2·KVH·D), rotate_half layout over the head's first R ≤ D
// columns: pair (i, i + R/2) of every query and key head turns by
// a = pos · inv_freq[i] (cos and sin times `scale`, LongRoPE's factor).
// Value and pass-through columns are never read or written. Both
// directions overwrite (backward turns by −a: the transpose), exactly as
// ops/cpu/rope_cpu.cpp.
//
// One thread per (token, i < R/2, group of kGroup heads): it computes cos a,
// sin a once, in f32 with the CPU's formula (f32 product, accurate sincosf,
// so f32 matches to rounding), loads pair i of its kGroup heads, then
// rotates and stores them. Lanes take consecutive i, so a warp's accesses
// are contiguous within a head. (A thread per (token, i) looping over all
// H + KVH heads had one load in flight at a time, its store aliasing the
// next head's load: on an H100 it moved about 1.6 TB/s for LLaMA-1B's and
// 1 TB/s for Phi-3-mini's 64 heads of 96; 16-byte accesses along i, fewer
// threads each looping as long, were slower still.)
#include "framework/ops/cuda/common.cuh"

#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

constexpr int kThreads = 256;

constexpr int kGroup = 4;  // heads a thread rotates: 2·kGroup loads in flight

// x (BT, width); pos (BT) i32; inv (half = R/2) f32. sign +1 forward, −1 backward.
template <class T>
__global__ void rope_kernel(T* x, const int32_t* pos, const float* inv, int64_t bt_count, int64_t width,
                            int64_t head_dim, int64_t half, int64_t rotated_heads, float sign, float scale) {
  const int64_t groups = (rotated_heads + kGroup - 1) / kGroup;
  const int64_t n = bt_count * groups * half;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k % half, rest = k / half, group = rest % groups, bt = rest / groups;
    const float a = float(pos[bt]) * inv[i];
    float s, c;
    sincosf(a, &s, &c);
    s *= sign * scale;
    c *= scale;
    const int64_t h0 = group * kGroup;
    const int heads = int(min(int64_t(kGroup), rotated_heads - h0));
    T* v = x + bt * width + h0 * head_dim + i;  // pair i of head h0; the k heads follow the q heads
    float x1[kGroup], x2[kGroup];
#pragma unroll
    for (int h = 0; h < kGroup; ++h) {
      if (h < heads) {
        x1[h] = to_f(v[h * head_dim]);
        x2[h] = to_f(v[h * head_dim + half]);
      }
    }
#pragma unroll
    for (int h = 0; h < kGroup; ++h) {
      if (h < heads) {
        v[h * head_dim] = from_f<T>(x1[h] * c - x2[h] * s);
        v[h * head_dim + half] = from_f<T>(x2[h] * c + x1[h] * s);
      }
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
  const int64_t n = B * T * half * ((cfg.heads + cfg.kv_heads + kGroup - 1) / kGroup);
  if (n == 0) return;
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
