// Flash attention on the GPU: online softmax over key tiles held in shared
// memory, so no (T, P+T) score matrix ever exists. Keys are the P prefix
// rows (shared by the batch, always visible) then the T tokens (padding
// mask, optional causal mask); query heads h read kv head h / (H / KVH).
// Forward writes out; backward accumulates into dqkv and dprefix_k/v.
//
// Two implementations behind one launcher:
//
// Tensor cores (bf16, D ∈ {64, 96, 128, 256}; FlashAttention-2 layout;
// kernels in flash_attention.cuh). Every CTA has 64 rows of one (b, head),
// 16 rows per warp (4 warps), or in the backward at D = 64 without GQA 32
// (2 warps; measured below); tiles of the other operand stream through shared memory with cp.async, double
// buffered, and every product is an mma.sync m16n8k16 (attention_mma.cuh):
//   forward (query block): S = Q·Kᵀ, online softmax in f32 (log2 domain),
//     O += P·V; saves the row logsumexp. Under causal masking key tiles past
//     the block's last query are skipped.
//   dq (query block): one sweep over the key tiles, dS = P∘(dP − δ) and
//     dQ += dS·K, with δ from the δ kernel below.
//   dkv (64 keys of one (b, kv head)): sweeps the group's query heads and
//     query tiles: Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, dV += Pᵀ·dO, dK += dSᵀ·Q, with
//     dK, dV in registers for the whole sweep. At D = 64 and 128 it also
//     adds dS·K to an f32 dQ with atomics and no dq kernel runs; under
//     PTUNE_DETERMINISTIC (ops/deterministic.h) the dq and dkv blocks run
//     in one launch instead.
//   D = 256 (Gemma 3) keeps every thread within 255 registers: Q and dO
//   fragments are re-read from shared memory, streamed tiles hold 32 rows,
//   and two dkv blocks share a key block, each accumulating half of dK, dV.
//
// SIMT (f32, the exact mode, and other head dims up to 256): one thread per
// query row, 64 rows of one (b, h) per block, f32 math. Past D = 128 the
// staged tiles hold 16 keys instead of 32, to stay in static shared memory,
// and the per-thread rows spill to local memory: it runs, slowly (bf16
// takes it only for head dims the tensor cores do not). Under a sliding
// window the forward's and dq's key sweeps start at the window of the
// block's first query, and dkv's query sweep ends past the window of the
// block's last key, so the cost follows the window, not T. Backward, with
// p = exp(s − lse) recomputed:
//   dq kernel (one thread per query): dq = scale·Σ p(dp − δ)·k
//   dkv kernel (one thread per key and kv head, looping over the group's
//   query heads): dv = Σ p·dout, dk = scale·Σ p(dp − δ)·q.
//
// Both backwards start with the δ kernel: the softmax-backward row term
// δ_i = Σ_j p_ij·dp_ij equals Σ_d dO_id·O_id (O = P·V, FlashAttention's
// identity), so one pass over dO and the forward's O replaces a whole
// sweep over the keys. In bf16 O is rounded, so δ carries a relative error
// of ~2⁻⁹, the same as FlashAttention-2's; a query that sees no key has
// O = 0 and p = 0, so its δ = 0 is never used.
//
// Both: prefix gradients are written per batch row and summed over b after,
// so no two threads ever write the same element (no atomics, deterministic;
// only the atomic dQ above is not, and deterministic mode replaces it).
#include "framework/ops/cuda/common.cuh"

#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "framework/ops/deterministic.h"
#include "framework/ops/cuda/attention_mma.cuh"
#include "framework/ops/cuda/flash_attention.cuh"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

using namespace flash;  // NOLINT: Geometry and the tensor-core kernels live in flash_attention.cuh

constexpr int kRows = 64;  // queries (forward, dq) or keys (dkv) per block
// Keys (or queries) staged in shared memory per step: two (tile, D) f32
// tiles stay within the 48 KiB of static shared memory up to D = 256.
template <int kD>
constexpr int kTile = kD > 128 ? 16 : 32;


// Which keys a query sees (causal mask, sliding window) is decided by the
// helpers the tensor-core kernels use (flash_attention.cuh: causal_visible,
// visible_key_begin, visible_query_end); the padding part by the caller
// (ok / key_visible).

// Rows of a staged tile [start, start + kTile) before `first`: a thread
// starts its sweep of the tile there, so rows outside its window cost
// nothing (the block stages the tile once for all its threads).
template <int kD>
__device__ __forceinline__ int tile_skip(int64_t first, int64_t start) {
  const int64_t n = first - start;
  return n <= 0 ? 0 : n >= kTile<kD> ? kTile<kD> : int(n);
}

// Stages keys and values [start, start + kTile<kD>) of (b, kvh) in shared
// memory as f32 (zero past S or D), and whether each key is visible under
// the padding mask (the forward and dq kernels share it).
template <class T, int kD>
__device__ __forceinline__ void stage_keys(const Geometry& g, const T* qkv, const T* pk, const T* pv,
                                           const int32_t* mask, int64_t b, int64_t kvh, int64_t start,
                                           float (&ks)[kTile<kD>][kD], float (&vs)[kTile<kD>][kD],
                                           bool (&ok)[kTile<kD>]) {
  for (int idx = threadIdx.x; idx < kTile<kD> * kD; idx += blockDim.x) {
    const int r = idx / kD, d = idx % kD;
    const int64_t j = start + r;
    const bool in = j < g.S && d < g.D;
    ks[r][d] = in ? to_f(key_row(g, qkv, pk, b, kvh, j)[d]) : 0.0f;
    vs[r][d] = in ? to_f(value_row(g, qkv, pv, b, kvh, j)[d]) : 0.0f;
    if (d == 0) ok[r] = j < g.S && (j < g.P || mask == nullptr || mask[b * g.T + (j - g.P)] != 0);
  }
}

template <class T, int kD>
__global__ void flash_forward_kernel(Geometry g, T* out, float* lse, const T* qkv, const T* pk, const T* pv,
                                     const int32_t* mask) {
  __shared__ float ks[kTile<kD>][kD];
  __shared__ float vs[kTile<kD>][kD];
  __shared__ bool ok[kTile<kD>];
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, kvh = h / g.group;
  const int64_t q0 = int64_t(blockIdx.x) * kRows, i = q0 + threadIdx.x;
  const bool active = i < g.T;
  float q[kD], acc[kD];
#pragma unroll
  for (int d = 0; d < kD; ++d) {
    q[d] = active && d < g.D ? to_f(qkv[(b * g.T + i) * g.W + h * g.D + d]) * g.scale : 0.0f;
    acc[d] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  // Causal: keys past the block's last query are never visible. Sliding
  // window: nor keys before the block's first query's window (the later
  // queries' windows start later still), nor, per row, before its own.
  const int64_t first = visible_key_begin(g, int(q0)), row_first = visible_key_begin(g, int(i));
  const int64_t last = g.causal ? min(g.S, g.P + q0 + kRows) : g.S;
  for (int64_t start = first; start < last; start += kTile<kD>) {
    stage_keys<T, kD>(g, qkv, pk, pv, mask, b, kvh, start, ks, vs, ok);
    __syncthreads();
    if (active) {
      for (int r = tile_skip<kD>(row_first, start); r < kTile<kD>; ++r) {
        const int64_t j = start + r;
        if (!ok[r] || !causal_visible(g, int(j), int(i))) continue;
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
__global__ void flash_dq_kernel(Geometry g, T* dqkv, const T* dout, const T* qkv, const T* pk, const T* pv,
                                const float* lse, const float* delta, const int32_t* mask) {
  __shared__ float ks[kTile<kD>][kD];
  __shared__ float vs[kTile<kD>][kD];
  __shared__ bool ok[kTile<kD>];
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H, kvh = h / g.group;
  const int64_t q0 = int64_t(blockIdx.x) * kRows, i = q0 + threadIdx.x;
  const float row_lse = i < g.T ? lse[bh * g.T + i] : -INFINITY;
  const bool active = i < g.T && row_lse != -INFINITY;
  const float dl = active ? delta[bh * g.T + i] : 0.0f;
  float q[kD], go[kD], a[kD];
#pragma unroll
  for (int d = 0; d < kD; ++d) {
    const bool in = active && d < g.D;
    q[d] = in ? to_f(qkv[(b * g.T + i) * g.W + h * g.D + d]) * g.scale : 0.0f;
    go[d] = in ? to_f(dout[(b * g.T + i) * g.qw + h * g.D + d]) : 0.0f;
    a[d] = 0.0f;
  }
  // The forward's key range (causal end, sliding-window start).
  const int64_t first = visible_key_begin(g, int(q0)), row_first = visible_key_begin(g, int(i));
  const int64_t last = g.causal ? min(g.S, g.P + q0 + kRows) : g.S;
  for (int64_t start = first; start < last; start += kTile<kD>) {
    stage_keys<T, kD>(g, qkv, pk, pv, mask, b, kvh, start, ks, vs, ok);
    __syncthreads();
    if (active) {
      for (int r = tile_skip<kD>(row_first, start); r < kTile<kD>; ++r) {
        const int64_t j = start + r;
        if (!ok[r] || !causal_visible(g, int(j), int(i))) continue;
        float s = 0.0f, dp = 0.0f;
#pragma unroll
        for (int d = 0; d < kD; ++d) {
          s += q[d] * ks[r][d];
          dp += go[d] * vs[r][d];
        }
        const float dsc = __expf(s - row_lse) * (dp - dl);
#pragma unroll
        for (int d = 0; d < kD; ++d) a[d] += dsc * ks[r][d];
      }
    }
    __syncthreads();
  }
  if (!active) return;
#pragma unroll
  for (int d = 0; d < kD; ++d) {
    if (d >= g.D) continue;
    T& dst = dqkv[(b * g.T + i) * g.W + h * g.D + d];
    dst = from_f<T>(to_f(dst) + g.scale * a[d]);
  }
}

// One thread per key j of (b, kv head); token keys accumulate into dqkv,
// prefix keys write their batch row's share into part (B, P, 2, KVH·D).
template <class T, int kD>
__global__ void flash_dkv_kernel(Geometry g, T* dqkv, float* part, const T* dout, const T* qkv, const T* pk,
                                 const T* pv, const float* lse, const float* delta, const int32_t* mask) {
  __shared__ float qs[kTile<kD>][kD];
  __shared__ float gs[kTile<kD>][kD];
  __shared__ float ls[kTile<kD>], ds[kTile<kD>];
  const int64_t bk = blockIdx.y, b = bk / g.KVH, kvh = bk % g.KVH;
  const int64_t j0 = int64_t(blockIdx.x) * kRows, j = j0 + threadIdx.x;
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
  // Sliding window: queries at or past the window's end of the block's last
  // key see none of its keys, and a key's own sweep stops at its window's
  // end (q_end ≤ q_begin, no sweep at all, for prefix keys the window hides).
  const int64_t first_key_t = j0 - g.P;
  const int64_t q_begin = g.causal && first_key_t > 0 ? first_key_t : 0;
  const int64_t q_end = visible_query_end(g, min(g.S, j0 + kRows) - 1), row_end = visible_query_end(g, j);
  for (int64_t h = kvh * g.group; h < (kvh + 1) * g.group; ++h) {
    const int64_t bh = b * g.H + h;
    for (int64_t start = q_begin; start < q_end; start += kTile<kD>) {
      for (int idx = threadIdx.x; idx < kTile<kD> * kD; idx += blockDim.x) {
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
        const int64_t rows = min(int64_t(kTile<kD>), row_end - start);
        for (int r = 0; r < rows; ++r) {
          const int64_t i = start + r;
          if (ls[r] == -INFINITY || !causal_visible(g, int(j), int(i))) continue;
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

// dout · out over one 16-byte vector of each (4 f32 or 8 bf16), or over a
// single element when kVec = 1.
__device__ __forceinline__ float dot_vec(const float* a, const float* b) {
  const float4 x = *reinterpret_cast<const float4*>(a), y = *reinterpret_cast<const float4*>(b);
  return x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
}
__device__ __forceinline__ float dot_vec(const bf16* a, const bf16* b) {
  const uint4 x = *reinterpret_cast<const uint4*>(a), y = *reinterpret_cast<const uint4*>(b);
  __nv_bfloat162 xa[4], ya[4];
  memcpy(xa, &x, sizeof(xa));
  memcpy(ya, &y, sizeof(ya));
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 u = __bfloat1622float2(xa[k]), v = __bfloat1622float2(ya[k]);
    sum += u.x * v.x + u.y * v.y;
  }
  return sum;
}
template <int kVec, class T>
__device__ __forceinline__ float dot_chunk(const T* a, const T* b) {
  if constexpr (kVec == 1) return to_f(*a) * to_f(*b);
  else return dot_vec(a, b);
}

// δ (B, H, T) f32 = Σ_d dout·out for every (token, head) row r = (b·T + t)·H + h
// of the (B, T, H·D) tensors (rows of D contiguous elements). `lanes` (a
// power of two ≤ 32) adjacent lanes share a row, kVec elements per read,
// so a warp reads 32/lanes consecutive rows as one contiguous span.
template <class T, int kVec>
__global__ void attention_delta_kernel(float* delta, const T* dout, const T* out, int64_t rows, int64_t seq,
                                       int64_t heads, int D, int lanes) {
  const int lane = int(threadIdx.x) % 32, per_warp = 32 / lanes;
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int64_t warps = int64_t(gridDim.x) * blockDim.x / 32;
  // The trip count is uniform over the warp, so every lane reaches the shuffles.
  for (int64_t base = warp * per_warp; base < rows; base += warps * per_warp) {
    const int64_t r = base + lane / lanes;
    float sum = 0.0f;
    if (r < rows) {
      const T* a = dout + r * D;
      const T* o = out + r * D;
      for (int c = (lane % lanes) * kVec; c < D; c += lanes * kVec) sum += dot_chunk<kVec>(a + c, o + c);
    }
    for (int off = lanes / 2; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (r < rows && lane % lanes == 0) {
      const int64_t b = r / (seq * heads), t = (r / heads) % seq, h = r % heads;
      delta[(b * heads + h) * seq + t] = sum;
    }
  }
}


Geometry make_geometry(const Tensor& qkv, const Tensor& prefix_k, const AttentionConfig& cfg) {
  const AttentionShape shape = attention_shape(qkv, prefix_k, cfg);
  PTUNE_CHECK(cfg.head_dim <= 256, "attention: head dim {} > 256 is not supported by the CUDA kernel", cfg.head_dim);
  PTUNE_CHECK(shape.batch * cfg.heads < (int64_t(1) << 31), "attention: {} (batch, head) pairs exceed the CUDA grid",
              shape.batch * cfg.heads);
  return {shape.batch,    shape.seq,       shape.prefix,  shape.keys,     cfg.heads,
          cfg.kv_heads,   cfg.head_dim,    shape.group,   cfg.qkv_width(), cfg.q_width(),
          cfg.kv_width(), cfg.scale,       cfg.mask == AttentionMask::kCausal, cfg.window};
}

template <class T>
const T* cptr(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.raw()) : nullptr; }

// Instantiates a kernel for the smallest head-dim bucket that fits D.
#define PTUNE_HEAD_DIM_DISPATCH(D, kD, ...)                        \
  do {                                                             \
    if ((D) <= 32) { constexpr int kD = 32; __VA_ARGS__; }         \
    else if ((D) <= 64) { constexpr int kD = 64; __VA_ARGS__; }    \
    else if ((D) <= 128) { constexpr int kD = 128; __VA_ARGS__; }  \
    else { constexpr int kD = 256; __VA_ARGS__; }                  \
  } while (0)

// The tensor-core path takes bf16 with D ∈ {64, 96 (Phi-3), 128, 256
// (Gemma 3)}; cp.async needs every row 16-byte aligned (row strides are
// multiples of D, so the bases decide).
bool use_tensor_cores(const Geometry& g, DType dtype, std::initializer_list<const Tensor*> tensors) {
  if (dtype != DType::kBF16 || (g.D != 64 && g.D != 96 && g.D != 128 && g.D != 256)) return false;
  for (const Tensor* t : tensors)
    if (t->defined() && reinterpret_cast<uintptr_t>(t->raw()) % 16 != 0) return false;
  return true;
}

// Opts the kernel into more than the default 48 KiB of dynamic shared memory.
template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  PTUNE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

// The backward in one launch and dQ by atomics exist for the head dims they
// were written and measured for, 64 and 128; 96 and 256 launch dq and dkv.
template <int kD>
constexpr bool kFusedBackward = kD == 64 || kD == 128;

// Launches a tensor-core kernel as described by flash_attention.cuh.
template <class Kernel, class... Args>
void launch_mma(Kernel kernel, const MmaLaunch& l, const Stream& stream, Args... args) {
  allow_smem(kernel, l.smem);
  kernel<<<l.grid, l.threads, l.smem, raw(stream)>>>(args...);
  PTUNE_CUDA_LAUNCH_CHECK();
}

template <int kD>
void forward_mma(const Geometry& g, bf16* out, float* lse, const bf16* qkv, const bf16* pk, const bf16* pv,
                 const int32_t* mask, const Stream& stream) {
  launch_mma(flash_forward_mma_kernel<kD>, forward_launch<kD>(g), stream, g, out, lse, qkv, pk, pv, mask);
}

// dq_acc: (B, T, H·D) f32 scratch for dQ by atomics, else null (one launch,
// or two past kFusedBackward).
template <int kD, int kMT>
void backward_mma_tiles(const Geometry& g, bf16* dqkv, bool add, const float* delta, float* part, float* dq_acc,
                        const bf16* dout, const bf16* qkv, const bf16* pk, const bf16* pv, const float* lse,
                        const int32_t* mask, const Stream& stream) {
  if constexpr (kFusedBackward<kD>) {
    if (dq_acc != nullptr) {
      PTUNE_CUDA_CHECK(cudaMemsetAsync(dq_acc, 0, size_t(g.B * g.T * g.qw) * sizeof(float), raw(stream)));
      launch_mma(flash_dkv_mma_kernel<kD, kMT, true>, dkv_launch<kD, kMT, true>(g), stream, g, dqkv, add, part, dq_acc,
                 dout, qkv, pk, pv, lse, delta, mask);
      const MmaLaunch f = dq_finish_launch(g);
      flash_dq_finish_kernel<<<f.grid, f.threads, 0, raw(stream)>>>(g, dqkv, add, dq_acc);
      PTUNE_CUDA_LAUNCH_CHECK();
      return;
    }
    const MmaLaunch l = backward_launch<kD, kMT>(g);
    PTUNE_CHECK(l.grid.x < (1u << 31), "attention: {} blocks exceed the CUDA grid", l.grid.x);
    launch_mma(flash_backward_mma_kernel<kD, kMT>, l, stream, g, dqkv, add, part, dout, qkv, pk, pv, lse, delta,
               mask);
  } else {
    launch_mma(flash_dq_mma_kernel<kD, kMT>, dq_launch<kD, kMT>(g), stream, g, dqkv, add, dout, qkv, pk, pv, lse,
               delta, mask);
    launch_mma(flash_dkv_mma_kernel<kD, kMT>, dkv_launch<kD, kMT>(g), stream, g, dqkv, add, part, nullptr, dout,
               qkv, pk, pv, lse, delta, mask);
  }
}

template <int kD>
void backward_mma(const Geometry& g, bf16* dqkv, bool add, const float* delta, float* part, float* dq_acc,
                  const bf16* dout, const bf16* qkv, const bf16* pk, const bf16* pv, const float* lse,
                  const int32_t* mask, const Stream& stream) {
  // 32 rows a warp share each streamed fragment between two m tiles: at
  // D = 64 without GQA that is faster (a GPT-2-medium step's attention
  // backward 3.32 → 2.98 ms with atomic dQ on an H100), with GQA slower
  // (LLaMA-1B, 4 query heads a kv head: 4.04 → 4.24 ms), where the dkv
  // blocks, a quarter as many, already loop over the group's heads.
  if constexpr (kD == 64) {
    if (g.group == 1) {
      backward_mma_tiles<kD, 2>(g, dqkv, add, delta, part, dq_acc, dout, qkv, pk, pv, lse, mask, stream);
      return;
    }
  }
  backward_mma_tiles<kD, 1>(g, dqkv, add, delta, part, dq_acc, dout, qkv, pk, pv, lse, mask, stream);
}

// δ = rowsum(dout ∘ out) into delta (B, H, T), 16-byte vector reads when
// D and both bases allow.
template <class T>
void launch_delta(const Geometry& g, float* delta, const T* dout, const T* out, const Stream& stream) {
  constexpr int kVec = int(16 / sizeof(T));
  const bool vec = g.D % kVec == 0 && reinterpret_cast<uintptr_t>(dout) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(out) % 16 == 0;
  const int64_t chunks = vec ? g.D / kVec : g.D;
  int lanes = 1;
  while (lanes < chunks && lanes < 32) lanes *= 2;
  const int64_t rows = g.B * g.T * g.H, warps = (rows + 32 / lanes - 1) / (32 / lanes);
  const unsigned blocks = blocks_for(warps * 32, 256);
  if (vec) {
    attention_delta_kernel<T, kVec><<<blocks, 256, 0, raw(stream)>>>(delta, dout, out, rows, g.T, g.H, int(g.D),
                                                                    lanes);
  } else {
    attention_delta_kernel<T, 1><<<blocks, 256, 0, raw(stream)>>>(delta, dout, out, rows, g.T, g.H, int(g.D), lanes);
  }
  PTUNE_CUDA_LAUNCH_CHECK();
}

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
  if (use_tensor_cores(g, qkv.dtype(), {&out, &qkv, &prefix_k, &prefix_v})) {
    auto launch = g.D == 64 ? forward_mma<64> : g.D == 96 ? forward_mma<96> : g.D == 128 ? forward_mma<128>
                                                                                        : forward_mma<256>;
    launch(g, static_cast<bf16*>(out.raw()), lse, cptr<bf16>(qkv), cptr<bf16>(prefix_k), cptr<bf16>(prefix_v),
           saved_mask, stream);
    return;
  }
  const dim3 grid(unsigned((g.T + kRows - 1) / kRows), unsigned(g.B * g.H));
  PTUNE_FLOAT_DISPATCH(qkv.dtype(), T, op,
    PTUNE_HEAD_DIM_DISPATCH(g.D, kD,
      flash_forward_kernel<T, kD><<<grid, kRows, 0, raw(stream)>>>(
          g, static_cast<T*>(out.raw()), lse, cptr<T>(qkv), cptr<T>(prefix_k), cptr<T>(prefix_v), saved_mask)));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void attention_backward(const Tensor& dqkv, const Tensor& dprefix_k, const Tensor& dprefix_v, const Tensor& dscores,
                        const Tensor& dout, const Tensor& out, const Tensor& qkv, const Tensor& probs,
                        const Tensor& prefix_k, const Tensor& prefix_v, const AttentionConfig& cfg, GradMode mode,
                        const Stream& stream) {
  const char* op = "attention_backward";
  (void)dscores;  // the CPU's scratch; flash attention needs none of that size
  check_cuda_tensor(qkv, "qkv", op);
  const Geometry g = make_geometry(qkv, prefix_k, cfg);
  PTUNE_CHECK(dqkv.numel() == qkv.numel() && dqkv.dtype() == qkv.dtype(), "{}: dqkv {} for qkv {}", op,
              dqkv.shape().str(), qkv.shape().str());
  PTUNE_CHECK(dout.numel() == g.B * g.T * g.qw && dout.dtype() == qkv.dtype(), "{}: dout {}", op, dout.shape().str());
  check_cuda_tensor(out, "out", op);
  PTUNE_CHECK(out.numel() == g.B * g.T * g.qw && out.dtype() == qkv.dtype(),
              "{}: out {} {} must be the forward's output ({}, {}, {}) {}", op, out.shape().str(),
              dtype_name(out.dtype()), g.B, g.T, g.qw, dtype_name(qkv.dtype()));
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
  float* pdelta = static_cast<float*>(delta.tensor().raw());
  float* ppart = want_prefix ? static_cast<float*>(part.tensor().raw()) : nullptr;
  PTUNE_FLOAT_DISPATCH(qkv.dtype(), T, op, launch_delta<T>(g, pdelta, cptr<T>(dout), cptr<T>(out), stream));
  if (use_tensor_cores(g, qkv.dtype(), {&dqkv, &dout, &qkv, &prefix_k, &prefix_v})) {
    const bool dq_atomic = !deterministic() && (g.D == 64 || g.D == 128);
    Scratch dq_acc(qkv.device(), {dq_atomic ? g.B * g.T * g.qw : 1}, DType::kF32);
    float* pdq_acc = dq_atomic ? static_cast<float*>(dq_acc.tensor().raw()) : nullptr;
    auto launch = g.D == 64 ? backward_mma<64> : g.D == 96 ? backward_mma<96> : g.D == 128 ? backward_mma<128>
                                                                                         : backward_mma<256>;
    launch(g, static_cast<bf16*>(dqkv.raw()), mode == GradMode::kAdd, pdelta, ppart, pdq_acc, cptr<bf16>(dout),
           cptr<bf16>(qkv), cptr<bf16>(prefix_k), cptr<bf16>(prefix_v), lse, mask, stream);
  } else {
    // The SIMT kernels (the exact f32 mode) skip the rows and keys that get
    // no gradient, so kWrite zeroes first and adds.
    if (mode == GradMode::kWrite)
      PTUNE_CUDA_CHECK(cudaMemsetAsync(dqkv.raw(), 0, dqkv.nbytes(), raw(stream)));
    const dim3 qgrid(unsigned((g.T + kRows - 1) / kRows), unsigned(g.B * g.H));
    const dim3 kgrid(unsigned((g.S + kRows - 1) / kRows), unsigned(g.B * g.KVH));
    PTUNE_FLOAT_DISPATCH(qkv.dtype(), T, op,
      PTUNE_HEAD_DIM_DISPATCH(g.D, kD,
        flash_dq_kernel<T, kD><<<qgrid, kRows, 0, raw(stream)>>>(g, static_cast<T*>(dqkv.raw()), cptr<T>(dout),
                                                                 cptr<T>(qkv), cptr<T>(prefix_k), cptr<T>(prefix_v),
                                                                 lse, pdelta, mask);
        PTUNE_CUDA_LAUNCH_CHECK();
        flash_dkv_kernel<T, kD><<<kgrid, kRows, 0, raw(stream)>>>(g, static_cast<T*>(dqkv.raw()), ppart,
                                                                  cptr<T>(dout), cptr<T>(qkv), cptr<T>(prefix_k),
                                                                  cptr<T>(prefix_v), lse, pdelta, mask)));
    PTUNE_CUDA_LAUNCH_CHECK();
  }
  if (!want_prefix) return;
  prefix_reduce_kernel<<<blocks_for(g.P * g.kvw, 256), 256, 0, raw(stream)>>>(
      dprefix_k.defined() ? static_cast<float*>(dprefix_k.raw()) : nullptr,
      dprefix_v.defined() ? static_cast<float*>(dprefix_v.raw()) : nullptr, ppart, g.B, g.P, g.kvw);
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
