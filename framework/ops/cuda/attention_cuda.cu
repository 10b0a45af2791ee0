// Flash attention on the GPU: online softmax over key tiles held in shared
// memory, so no (T, P+T) score matrix ever exists. Keys are the P prefix
// rows (shared by the batch, always visible) then the T tokens (padding
// mask, optional causal mask); query heads h read kv head h / (H / KVH).
//
// Forward: one thread per query row, 64 rows of one (b, h) per block;
// saves the row logsumexp. Backward, with p = exp(s − lse) recomputed:
//   dq kernel (one thread per query): δ = Σ p·dp, dq = scale·(Σ p·dp·k − δ·Σ p·k)
//   dkv kernel (one thread per key and kv head, looping over the group's
//   query heads): dv = Σ p·dout, dk = scale·Σ p(dp − δ)·q.
// Prefix gradients are written per batch row and summed over b after, so
// no two threads ever write the same element (no atomics, deterministic).
// This is the SIMT version: correct and memory-light; the tensor-core
// (wgmma) version is the next step (docs/cuda.md).
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

constexpr int kRows = 64;  // queries (forward, dq) or keys (dkv) per block
constexpr int kTile = 32;  // keys (or queries) staged in shared memory per step

struct Geometry {
  int64_t B, T, P, S, H, KVH, D, group, W, qw, kvw;
  float scale;
  bool causal;
};

template <class T>
__device__ __forceinline__ const T* key_row(const Geometry& g, const T* qkv, const T* pk, int64_t b, int64_t kvh,
                                            int64_t j) {
  return j < g.P ? pk + j * g.kvw + kvh * g.D : qkv + (b * g.T + (j - g.P)) * g.W + g.qw + kvh * g.D;
}
template <class T>
__device__ __forceinline__ const T* value_row(const Geometry& g, const T* qkv, const T* pv, int64_t b, int64_t kvh,
                                              int64_t j) {
  return j < g.P ? pv + j * g.kvw + kvh * g.D : qkv + (b * g.T + (j - g.P)) * g.W + g.qw + g.kvw + kvh * g.D;
}

// Key j visible to query i (mask part checked by the caller via key_ok).
__device__ __forceinline__ bool causal_ok(const Geometry& g, int64_t j, int64_t i) {
  return !g.causal || j < g.P || j - g.P <= i;
}

template <class T, int kD>
__global__ void flash_forward_kernel(Geometry g, T* out, float* lse, const T* qkv, const T* pk, const T* pv,
                                     const int32_t* mask) {
  __shared__ float ks[kTile][kD];
  __shared__ float vs[kTile][kD];
  __shared__ bool ok[kTile];
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, kvh = h / g.group;
  const int64_t i = int64_t(blockIdx.x) * kRows + threadIdx.x;
  const bool active = i < g.T;
  float q[kD], acc[kD];
#pragma unroll
  for (int d = 0; d < kD; ++d) {
    q[d] = active && d < g.D ? to_f(qkv[(b * g.T + i) * g.W + h * g.D + d]) * g.scale : 0.0f;
    acc[d] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  // Causal: keys past the block's last query are never visible.
  const int64_t last = g.causal ? min(g.S, g.P + int64_t(blockIdx.x + 1) * kRows) : g.S;
  for (int64_t start = 0; start < last; start += kTile) {
    for (int idx = threadIdx.x; idx < kTile * kD; idx += blockDim.x) {
      const int r = idx / kD, d = idx % kD;
      const int64_t j = start + r;
      const bool in = j < g.S && d < g.D;
      ks[r][d] = in ? to_f(key_row(g, qkv, pk, b, kvh, j)[d]) : 0.0f;
      vs[r][d] = in ? to_f(value_row(g, qkv, pv, b, kvh, j)[d]) : 0.0f;
      if (d == 0) ok[r] = j < g.S && (j < g.P || mask == nullptr || mask[b * g.T + (j - g.P)] != 0);
    }
    __syncthreads();
    if (active) {
      for (int r = 0; r < kTile; ++r) {
        const int64_t j = start + r;
        if (!ok[r] || !causal_ok(g, j, i)) continue;
        float s = 0.0f;
#pragma unroll
        for (int d = 0; d < kD; ++d) s += q[d] * ks[r][d];
        if (s > m) {
          const float corr = __expf(m - s);  // 0 on the first visible key
          l = l * corr + 1.0f;
#pragma unroll
          for (int d = 0; d < kD; ++d) acc[d] = acc[d] * corr + vs[r][d];
          m = s;
        } else {
          const float p = __expf(s - m);
          l += p;
#pragma unroll
          for (int d = 0; d < kD; ++d) acc[d] += p * vs[r][d];
        }
      }
    }
    __syncthreads();
  }
  if (!active) return;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // a query that sees nothing outputs 0
#pragma unroll
  for (int d = 0; d < kD; ++d)
    if (d < g.D) out[(b * g.T + i) * g.qw + h * g.D + d] = from_f<T>(acc[d] * inv);
  lse[bh * g.T + i] = l > 0.0f ? m + logf(l) : -INFINITY;
}

template <class T, int kD>
__global__ void flash_dq_kernel(Geometry g, T* dqkv, float* delta, const T* dout, const T* qkv, const T* pk,
                                const T* pv, const float* lse, const int32_t* mask) {
  __shared__ float ks[kTile][kD];
  __shared__ float vs[kTile][kD];
  __shared__ bool ok[kTile];
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, kvh = h / g.group;
  const int64_t i = int64_t(blockIdx.x) * kRows + threadIdx.x;
  const float row_lse = i < g.T ? lse[bh * g.T + i] : -INFINITY;
  const bool active = i < g.T && row_lse != -INFINITY;
  float q[kD], go[kD], a[kD], pk_sum[kD];
#pragma unroll
  for (int d = 0; d < kD; ++d) {
    const bool in = active && d < g.D;
    q[d] = in ? to_f(qkv[(b * g.T + i) * g.W + h * g.D + d]) * g.scale : 0.0f;
    go[d] = in ? to_f(dout[(b * g.T + i) * g.qw + h * g.D + d]) : 0.0f;
    a[d] = 0.0f;
    pk_sum[d] = 0.0f;
  }
  float dl = 0.0f;
  const int64_t last = g.causal ? min(g.S, g.P + int64_t(blockIdx.x + 1) * kRows) : g.S;
  for (int64_t start = 0; start < last; start += kTile) {
    for (int idx = threadIdx.x; idx < kTile * kD; idx += blockDim.x) {
      const int r = idx / kD, d = idx % kD;
      const int64_t j = start + r;
      const bool in = j < g.S && d < g.D;
      ks[r][d] = in ? to_f(key_row(g, qkv, pk, b, kvh, j)[d]) : 0.0f;
      vs[r][d] = in ? to_f(value_row(g, qkv, pv, b, kvh, j)[d]) : 0.0f;
      if (d == 0) ok[r] = j < g.S && (j < g.P || mask == nullptr || mask[b * g.T + (j - g.P)] != 0);
    }
    __syncthreads();
    if (active) {
      for (int r = 0; r < kTile; ++r) {
        const int64_t j = start + r;
        if (!ok[r] || !causal_ok(g, j, i)) continue;
        float s = 0.0f, dp = 0.0f;
#pragma unroll
        for (int d = 0; d < kD; ++d) {
          s += q[d] * ks[r][d];
          dp += go[d] * vs[r][d];
        }
        const float p = __expf(s - row_lse);
        dl += p * dp;
#pragma unroll
        for (int d = 0; d < kD; ++d) {
          a[d] += p * dp * ks[r][d];
          pk_sum[d] += p * ks[r][d];
        }
      }
    }
    __syncthreads();
  }
  if (i >= g.T) return;
  delta[bh * g.T + i] = active ? dl : 0.0f;
  if (!active) return;
#pragma unroll
  for (int d = 0; d < kD; ++d) {
    if (d >= g.D) continue;
    T& dst = dqkv[(b * g.T + i) * g.W + h * g.D + d];
    dst = from_f<T>(to_f(dst) + g.scale * (a[d] - dl * pk_sum[d]));
  }
}

// One thread per key j of (b, kv head); token keys accumulate into dqkv,
// prefix keys write their batch row's share into part (B, P, 2, KVH·D).
template <class T, int kD>
__global__ void flash_dkv_kernel(Geometry g, T* dqkv, float* part, const T* dout, const T* qkv, const T* pk,
                                 const T* pv, const float* lse, const float* delta, const int32_t* mask) {
  __shared__ float qs[kTile][kD];
  __shared__ float gs[kTile][kD];
  __shared__ float ls[kTile], ds[kTile];
  const int64_t bk = blockIdx.y, b = bk / g.KVH, kvh = bk % g.KVH;
  const int64_t j = int64_t(blockIdx.x) * kRows + threadIdx.x;
  const bool key_visible =
      j < g.S && (j < g.P || mask == nullptr || mask[b * g.T + (j - g.P)] != 0);
  float k[kD], v[kD], dk[kD], dv[kD];
#pragma unroll
  for (int d = 0; d < kD; ++d) {
    const bool in = key_visible && d < g.D;
    k[d] = in ? to_f(key_row(g, qkv, pk, b, kvh, j)[d]) : 0.0f;
    v[d] = in ? to_f(value_row(g, qkv, pv, b, kvh, j)[d]) : 0.0f;
    dk[d] = 0.0f;
    dv[d] = 0.0f;
  }
  // Causal: queries before the block's first token key never see it.
  const int64_t first_key_t = int64_t(blockIdx.x) * kRows - g.P;
  const int64_t q_begin = g.causal && first_key_t > 0 ? first_key_t : 0;
  for (int64_t h = kvh * g.group; h < (kvh + 1) * g.group; ++h) {
    const int64_t bh = b * g.H + h;
    for (int64_t start = q_begin; start < g.T; start += kTile) {
      for (int idx = threadIdx.x; idx < kTile * kD; idx += blockDim.x) {
        const int r = idx / kD, d = idx % kD;
        const int64_t i = start + r;
        const bool in = i < g.T && d < g.D;
        qs[r][d] = in ? to_f(qkv[(b * g.T + i) * g.W + h * g.D + d]) * g.scale : 0.0f;
        gs[r][d] = in ? to_f(dout[(b * g.T + i) * g.qw + h * g.D + d]) : 0.0f;
        if (d == 0) {
          ls[r] = i < g.T ? lse[bh * g.T + i] : -INFINITY;
          ds[r] = i < g.T ? delta[bh * g.T + i] : 0.0f;
        }
      }
      __syncthreads();
      if (key_visible) {
        for (int r = 0; r < kTile; ++r) {
          const int64_t i = start + r;
          if (ls[r] == -INFINITY || !causal_ok(g, j, i)) continue;
          float s = 0.0f, dp = 0.0f;
#pragma unroll
          for (int d = 0; d < kD; ++d) {
            s += qs[r][d] * k[d];
            dp += gs[r][d] * v[d];
          }
          const float p = __expf(s - ls[r]);
          const float dsc = p * (dp - ds[r]);
#pragma unroll
          for (int d = 0; d < kD; ++d) {
            dv[d] += p * gs[r][d];
            dk[d] += dsc * qs[r][d];  // qs carries the scale already
          }
        }
      }
      __syncthreads();
    }
  }
  if (!key_visible) return;
#pragma unroll
  for (int d = 0; d < kD; ++d) {
    if (d >= g.D) continue;
    if (j < g.P) {
      if (part == nullptr) continue;  // prefix gradients not wanted
      float* row = part + ((b * g.P + j) * 2) * g.kvw + kvh * g.D;
      row[d] = dk[d];
      row[g.kvw + d] = dv[d];
    } else {
      const int64_t base = (b * g.T + (j - g.P)) * g.W + g.qw + kvh * g.D;
      T& dkd = dqkv[base + d];
      T& dvd = dqkv[base + g.kvw + d];
      dkd = from_f<T>(to_f(dkd) + dk[d]);
      dvd = from_f<T>(to_f(dvd) + dv[d]);
    }
  }
}

// dprefix_k/v (P, KVH·D) += Σ_b part[b].
__global__ void prefix_reduce_kernel(float* dk, float* dv, const float* part, int64_t B, int64_t P, int64_t kvw) {
  const int64_t n = P * kvw;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = k / kvw, c = k % kvw;
    float sk = 0.0f, sv = 0.0f;
    for (int64_t b = 0; b < B; ++b) {
      const float* row = part + ((b * P + j) * 2) * kvw;
      sk += row[c];
      sv += row[kvw + c];
    }
    if (dk) dk[k] += sk;
    if (dv) dv[k] += sv;
  }
}

Geometry make_geometry(const Tensor& qkv, const Tensor& prefix_k, const AttentionConfig& cfg) {
  PTUNE_CHECK(cfg.heads > 0 && cfg.kv_heads > 0 && cfg.heads % cfg.kv_heads == 0 && cfg.head_dim > 0,
              "attention: {} heads, {} kv heads, head dim {}", cfg.heads, cfg.kv_heads, cfg.head_dim);
  PTUNE_CHECK(qkv.dim() == 3 && qkv.size(2) == cfg.qkv_width(), "attention: qkv {} for width {}", qkv.shape().str(),
              cfg.qkv_width());
  PTUNE_CHECK(cfg.head_dim <= 128, "attention: head dim {} > 128 is not supported by the CUDA kernel", cfg.head_dim);
  Geometry g{};
  g.B = qkv.size(0);
  g.T = qkv.size(1);
  g.P = prefix_k.defined() ? prefix_k.size(0) : 0;
  g.S = g.P + g.T;
  g.H = cfg.heads;
  g.KVH = cfg.kv_heads;
  g.D = cfg.head_dim;
  g.group = cfg.heads / cfg.kv_heads;
  g.W = cfg.qkv_width();
  g.qw = cfg.q_width();
  g.kvw = cfg.kv_width();
  g.scale = cfg.scale;
  g.causal = cfg.mask == AttentionMask::kCausal;
  if (g.P > 0)
    PTUNE_CHECK(prefix_k.size(1) == g.kvw && prefix_k.dtype() == qkv.dtype(),
                "attention: prefix keys {} {} for kv width {} {}", prefix_k.shape().str(),
                dtype_name(prefix_k.dtype()), g.kvw, dtype_name(qkv.dtype()));
  return g;
}

template <class T>
const T* cptr(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.raw()) : nullptr; }

// Instantiates a kernel for the smallest head-dim bucket that fits D.
#define PTUNE_HEAD_DIM_DISPATCH(D, kD, ...)                        \
  do {                                                             \
    if ((D) <= 32) { constexpr int kD = 32; __VA_ARGS__; }         \
    else if ((D) <= 64) { constexpr int kD = 64; __VA_ARGS__; }    \
    else { constexpr int kD = 128; __VA_ARGS__; }                  \
  } while (0)

}  // namespace

int64_t flash_state_numel(int64_t batch, int64_t heads, int64_t seq) { return batch * heads * seq + batch * seq; }

void attention_forward(const Tensor& out, const Tensor& probs, const Tensor& qkv, const Tensor& prefix_k,
                       const Tensor& prefix_v, const Tensor& key_mask, const AttentionConfig& cfg,
                       const Stream& stream) {
  const char* op = "attention_forward";
  check_cuda_tensor(qkv, "qkv", op);
  const Geometry g = make_geometry(qkv, prefix_k, cfg);
  PTUNE_CHECK(out.numel() == g.B * g.T * g.qw && out.dtype() == qkv.dtype(), "{}: out {} for ({}, {}, {})", op,
              out.shape().str(), g.B, g.T, g.qw);
  PTUNE_CHECK(probs.dtype() == DType::kF32 && probs.numel() >= flash_state_numel(g.B, g.H, g.T),
              "{}: the flash state needs {} f32 values (lse (B, H, T) + mask (B, T)); probs holds {}", op,
              flash_state_numel(g.B, g.H, g.T), probs.numel());
  if (key_mask.defined())
    PTUNE_CHECK(key_mask.numel() == g.B * g.T && key_mask.dtype() == DType::kI32, "{}: key mask {} for ({}, {})",
                op, key_mask.shape().str(), g.B, g.T);
  if (g.B * g.T == 0) return;
  float* lse = static_cast<float*>(probs.raw());
  // The mask travels to backward inside the state (i32 bits after lse).
  int32_t* saved_mask = reinterpret_cast<int32_t*>(lse + g.B * g.H * g.T);
  if (key_mask.defined()) {
    PTUNE_CUDA_CHECK(cudaMemcpyAsync(saved_mask, key_mask.raw(), size_t(g.B * g.T) * 4, cudaMemcpyDeviceToDevice,
                                     raw(stream)));
  } else {
    // All ones: memset can only fill bytes, so write 0x01010101 (non-zero = real).
    PTUNE_CUDA_CHECK(cudaMemsetAsync(saved_mask, 1, size_t(g.B * g.T) * 4, raw(stream)));
  }
  const dim3 grid(unsigned((g.T + kRows - 1) / kRows), unsigned(g.B * g.H));
  PTUNE_FLOAT_DISPATCH(qkv.dtype(), T, op,
    PTUNE_HEAD_DIM_DISPATCH(g.D, kD,
      flash_forward_kernel<T, kD><<<grid, kRows, 0, raw(stream)>>>(
          g, static_cast<T*>(out.raw()), lse, cptr<T>(qkv), cptr<T>(prefix_k), cptr<T>(prefix_v), saved_mask)));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void attention_backward(const Tensor& dqkv, const Tensor& dprefix_k, const Tensor& dprefix_v, const Tensor& dscores,
                        const Tensor& dout, const Tensor& qkv, const Tensor& probs, const Tensor& prefix_k,
                        const Tensor& prefix_v, const AttentionConfig& cfg, const Stream& stream) {
  const char* op = "attention_backward";
  (void)dscores;  // the CPU's scratch; flash attention needs none of that size
  check_cuda_tensor(qkv, "qkv", op);
  const Geometry g = make_geometry(qkv, prefix_k, cfg);
  PTUNE_CHECK(dqkv.numel() == qkv.numel() && dqkv.dtype() == qkv.dtype(), "{}: dqkv {} for qkv {}", op,
              dqkv.shape().str(), qkv.shape().str());
  PTUNE_CHECK(dout.numel() == g.B * g.T * g.qw && dout.dtype() == qkv.dtype(), "{}: dout {}", op, dout.shape().str());
  PTUNE_CHECK(probs.dtype() == DType::kF32 && probs.numel() >= flash_state_numel(g.B, g.H, g.T),
              "{}: probs must hold the flash state written by attention_forward", op);
  for (const Tensor* t : {&dprefix_k, &dprefix_v})
    if (t->defined()) PTUNE_CHECK(t->numel() == g.P * g.kvw && t->dtype() == DType::kF32,
                                  "{}: prefix gradients must be ({}, {}) f32", op, g.P, g.kvw);
  if (g.B * g.T == 0) return;
  const float* lse = static_cast<const float*>(probs.raw());
  const int32_t* mask = reinterpret_cast<const int32_t*>(lse + g.B * g.H * g.T);
  Scratch delta(qkv.device(), {g.B * g.H * g.T}, DType::kF32);
  const bool want_prefix = g.P > 0 && (dprefix_k.defined() || dprefix_v.defined());
  Scratch part(qkv.device(), {want_prefix ? g.B * g.P * 2 * g.kvw : 1}, DType::kF32);
  const dim3 qgrid(unsigned((g.T + kRows - 1) / kRows), unsigned(g.B * g.H));
  const dim3 kgrid(unsigned((g.S + kRows - 1) / kRows), unsigned(g.B * g.KVH));
  float* pdelta = static_cast<float*>(delta.tensor().raw());
  float* ppart = want_prefix ? static_cast<float*>(part.tensor().raw()) : nullptr;
  PTUNE_FLOAT_DISPATCH(qkv.dtype(), T, op,
    PTUNE_HEAD_DIM_DISPATCH(g.D, kD,
      flash_dq_kernel<T, kD><<<qgrid, kRows, 0, raw(stream)>>>(g, static_cast<T*>(dqkv.raw()), pdelta, cptr<T>(dout),
                                                               cptr<T>(qkv), cptr<T>(prefix_k), cptr<T>(prefix_v),
                                                               lse, mask);
      PTUNE_CUDA_LAUNCH_CHECK();
      flash_dkv_kernel<T, kD><<<kgrid, kRows, 0, raw(stream)>>>(g, static_cast<T*>(dqkv.raw()), ppart, cptr<T>(dout),
                                                                cptr<T>(qkv), cptr<T>(prefix_k), cptr<T>(prefix_v),
                                                                lse, pdelta, mask)));
  PTUNE_CUDA_LAUNCH_CHECK();
  if (!want_prefix) return;
  prefix_reduce_kernel<<<blocks_for(g.P * g.kvw, 256), 256, 0, raw(stream)>>>(
      dprefix_k.defined() ? static_cast<float*>(dprefix_k.raw()) : nullptr,
      dprefix_v.defined() ? static_cast<float*>(dprefix_v.raw()) : nullptr, ppart, g.B, g.P, g.kvw);
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
