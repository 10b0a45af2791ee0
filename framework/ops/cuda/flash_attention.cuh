// The tensor-core flash attention kernels (bf16, D ∈ {64, 96, 128, 256}) and the
// launch geometry they share with the SIMT kernels of attention_cuda.cu.
//
// Plain enough C++ to compile on the host as well: the includer provides
// bf16 / __nv_bfloat162 and the CUDA builtins, and the warp primitives of
// namespace mma — attention_mma.cuh on the GPU, the lane-by-lane emulation
// of tests/emulation on the CPU, where CI runs these kernels without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

// The kernels' dynamic shared memory (the emulation gives each block its own).
#ifndef PTUNE_DYNAMIC_SMEM
#define PTUNE_DYNAMIC_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
#endif

namespace ptune::ops::cuda::mma {

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low half
  uint32_t u;
  memcpy(&u, &v, sizeof(u));
  return u;
}

// Two C tiles side by side (columns 0..7 and 8..15) are exactly the A
// fragment of a 16 × 16 operand once packed to bf16 (layouts in
// attention_mma.cuh): that is how the probabilities of one product feed the
// next without touching memory (c_lo: columns 0..7, c_hi: columns 8..15).
__device__ __forceinline__ void c_to_a(uint32_t (&a)[4], const float (&c_lo)[4], const float (&c_hi)[4]) {
  a[0] = pack_bf16(c_lo[0], c_lo[1]);
  a[1] = pack_bf16(c_lo[2], c_lo[3]);
  a[2] = pack_bf16(c_hi[0], c_hi[1]);
  a[3] = pack_bf16(c_hi[2], c_hi[3]);
}

}  // namespace ptune::ops::cuda::mma

namespace ptune::ops::cuda::flash {

struct Geometry {
  int64_t B, T, P, S, H, KVH, D, group, W, qw, kvw;
  float scale;
  bool causal;
  int64_t window;  // AttentionConfig::window: 0 none, else query i sees keys j > P + i − window
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

constexpr int kMmaThreads = 128;  // 4 warps × 16 rows
// Resident CTAs per SM the D = 64 kernels are compiled for (a register cap
// through __launch_bounds__). Left alone ptxas takes 190–250 registers, 2
// CTAs (8 warps) an SM, and the short causal blocks of a 512-token row wait
// on memory. Measured on one H100, builds differing only in these caps
// (`ptune bench --profile`, P-Tuning v2 step, B 8, T 512, P 20):
// forward / dq / dkv at 4 / 3 / 3 CTAs cut attention from 5.13 to 4.67 ms
// (GPT-2-medium) and 6.32 to 5.73 ms (1B LLaMA), against 4.93 / 6.01 ms at
// 3 / 3 / 2 (at 4 / 3 / 3 ptxas spills 20 bytes in the forward and 52 in
// dkv, which costs less than the occupancy gains).
// The wider heads (96, 128, 256) need their registers.
template <int kD>
constexpr int kFwdBlocks = kD == 64 ? 4 : 1;
template <int kD>
constexpr int kDqBlocks = kD == 64 ? 3 : 1;
template <int kD>
constexpr int kDkvBlocks = kD == 64 ? 3 : 1;
constexpr int kBlock = 64;        // query rows (forward, dq) or key rows (dkv) per CTA
// Shared tiles are row-major (rows, D) bf16 with rows padded by 8 elements,
// so that the 8 rows one ldmatrix phase reads (16 bytes, 4 banks, each) hit
// distinct banks: a row stride of D + 8 = 72, 136 or 264 bf16 is 4 words
// mod 32 banks, and 104 (D = 96) is 20, which starts the 8 rows at banks 0,
// 20, 8, 28, 16, 4, 24, 12. Every row still starts 16-byte aligned for
// cp.async.
constexpr int kPad = 8;
constexpr float kLog2e = 1.4426950408889634f;

// Key j of batch row b exists and is not padding (prefix keys always are).
__device__ __forceinline__ bool key_real(const Geometry& g, const int32_t* mask, int64_t b, int j) {
  return j < g.S && (j < g.P || mask == nullptr || mask[b * g.T + (j - g.P)] != 0);
}
// Whether query token i may see key j under causal masking: a prefix key or
// a token key up to its own, and with a sliding window only keys less than
// `window` positions back (query i is key P + i), prefix keys included. A
// window of S or more hides nothing, so it is compared as min(window, S) in
// 32 bits (ptxas: fewer spills in the D = 64 backward than the 64-bit form).
__device__ __forceinline__ bool causal_visible(const Geometry& g, int j, int i) {
  return !g.causal || ((j < g.P || j - int(g.P) <= i) && (g.window == 0 || int(g.P) + i - j < int(min(g.window, g.S))));
}

// All kThreads threads copy a (kRowsT, kD) tile into shared memory (row stride
// kD + kPad), 16 bytes per cp.async; row(r) is the global row r or nullptr
// (zero-filled).
template <int kD, int kRowsT, int kThreads = kMmaThreads, class RowFn>
__device__ __forceinline__ void load_tile(bf16* dst, const bf16* base, RowFn row) {
  constexpr int kChunks = kD / 8;
  static_assert(kRowsT * kChunks % kThreads == 0, "whole copy rounds");
#pragma unroll
  for (int k = 0; k < kRowsT * kChunks / kThreads; ++k) {
    const int c = k * kThreads + int(threadIdx.x), r = c / kChunks, chunk = c % kChunks;
    const bf16* src = row(r);
    mma::cp_async_16(dst + r * (kD + kPad) + chunk * 8, src ? src + chunk * 8 : base, src != nullptr);
  }
}

// Lane addresses for ldmatrix_x4 over the 16 × 16 block at (row0, col0) of
// a shared tile with row stride `stride`:
//  frag_a: matrices (rows 0-7, cols 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15)
//    — the A fragment of a (rows = m, cols = k) tile; with .trans, the B
//    fragments of two n tiles of a (rows = k, cols = n) tile: regs 0, 1 for
//    columns 0-7 and regs 2, 3 for columns 8-15.
//  frag_b: matrices (rows 0-7, cols 0-7), (0-7, 8-15), (8-15, 0-7), (8-15, 8-15)
//    — the B fragments of two n tiles of a (rows = n, cols = k) tile: regs
//    0, 1 for rows 0-7 and regs 2, 3 for rows 8-15.
__device__ __forceinline__ const bf16* frag_a(const bf16* tile, int stride, int row0, int col0, int lane) {
  return tile + (row0 + ((lane >> 3) & 1) * 8 + (lane & 7)) * stride + col0 + (lane >> 4) * 8;
}
__device__ __forceinline__ const bf16* frag_b(const bf16* tile, int stride, int row0, int col0, int lane) {
  return tile + (row0 + (lane >> 4) * 8 + (lane & 7)) * stride + col0 + ((lane >> 3) & 1) * 8;
}

// The warp's A operand of a product: its 16·kMT rows (kMT m tiles) × kD
// columns of a shared tile (rows = m, cols = k), as ldmatrix fragments.
// Up to D = 128 they are loaded once and held in registers. At D = 256 they
// would take 64 of a thread's 255 registers, next to the 128 of its f32
// accumulator (O, dQ), so they are re-read from shared memory at each use:
// one more ldmatrix per 2·kN/8 MMAs, and no spilling.
template <int kD, int kMT, bool kHeld = (kD <= 128)>
struct RowFragments {
  uint32_t f[kMT][kD / 16][4];
  __device__ __forceinline__ void load(const bf16* tile, int row0, int lane) {
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
      for (int ks = 0; ks < kD / 16; ++ks)
        mma::ldmatrix_x4(f[mt][ks], frag_a(tile, kD + kPad, row0 + 16 * mt, ks * 16, lane));
    }
  }
  __device__ __forceinline__ void get(uint32_t (&a)[4], int mt, int ks, int /*lane*/) const {
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = f[mt][ks][i];
  }
};
template <int kD, int kMT>
struct RowFragments<kD, kMT, false> {
  const bf16* tile;  // the shared tile, which must stay put while the fragments are used
  int row0;
  __device__ __forceinline__ void load(const bf16* t, int r0, int /*lane*/) { tile = t, row0 = r0; }
  __device__ __forceinline__ void get(uint32_t (&a)[4], int mt, int ks, int lane) const {
    mma::ldmatrix_x4(a, frag_a(tile, kD + kPad, row0 + 16 * mt, ks * 16, lane));
  }
};

// The products below run over kMT m tiles of 16 rows each (the warp's
// rows); every B fragment read from shared memory serves all of them, so
// two m tiles halve the ldmatrix traffic per MMA.
//
// c[m][n] += A[m] · Bᵀ over k = kD for n tiles of 8 rows of B: A the warp's
// 16·kMT × kD rows, B a (kN, kD) shared tile (rows = n).
template <int kD, int kN, int kMT>
__device__ __forceinline__ void mma_abt(float (&c)[kMT][kN / 8][4], const RowFragments<kD, kMT>& a, const bf16* bt,
                                        int lane) {
#pragma unroll
  for (int ks = 0; ks < kD / 16; ++ks) {
    uint32_t af[kMT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) a.get(af[mt], mt, ks, lane);
#pragma unroll
    for (int np = 0; np < kN / 16; ++np) {
      uint32_t f[4];
      mma::ldmatrix_x4(f, frag_b(bt, kD + kPad, np * 16, ks * 16, lane));
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        mma::mma_bf16(c[mt][2 * np], af[mt], f[0], f[1]);
        mma::mma_bf16(c[mt][2 * np + 1], af[mt], f[2], f[3]);
      }
    }
  }
}

// c[m] += A[m] · B with A[m] (16 × kK) given as f32 C tiles (converted to
// bf16 fragments on the fly) and B kCols columns of a (kK, ·) shared tile
// (rows = k) with row stride kStride: a whole (kK, kD) tile, or a column
// slice of one (bt offset to its first column).
template <int kCols, int kK, int kMT, int kStride = kCols + kPad>
__device__ __forceinline__ void mma_cb(float (&c)[kMT][kCols / 8][4], const float (&a)[kMT][kK / 8][4],
                                       const bf16* bt, int lane) {
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
    uint32_t af[kMT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) mma::c_to_a(af[mt], a[mt][2 * kk], a[mt][2 * kk + 1]);
#pragma unroll
    for (int dp = 0; dp < kCols / 16; ++dp) {
      uint32_t f[4];
      mma::ldmatrix_x4_trans(f, frag_a(bt, kStride, kk * 16, dp * 16, lane));
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        mma::mma_bf16(c[mt][2 * dp], af[mt], f[0], f[1]);
        mma::mma_bf16(c[mt][2 * dp + 1], af[mt], f[2], f[3]);
      }
    }
  }
}

// Max over the 4 lanes (t = 0..3) that hold one accumulator row.
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// dst[0, 1] = bf16(dst + (x0, x1)), or bf16(x0, x1) without `add`
// (GradMode::kWrite): the backward's store into dqkv.
__device__ __forceinline__ void store_pair(bf16* dst, float x0, float x1, bool add) {
  __nv_bfloat162* p = reinterpret_cast<__nv_bfloat162*>(dst);
  if (add) {
    const float2 old = __bfloat1622float2(*p);
    x0 += old.x;
    x1 += old.y;
  }
  *p = __floats2bfloat162_rn(x0, x1);
}

// Keys a query block [q0, q0 + 64) can see: all, or under causal masking the
// prefix and tokens up to the block's last query ...
__device__ __forceinline__ int visible_key_end(const Geometry& g, int q0) {
  return g.causal ? int(min(g.S, g.P + q0 + kBlock)) : int(g.S);
}
// ... from 0, or with a sliding window from the first key in its first
// query's window (later queries' windows start later): P + q0 − window + 1.
// The sweeps start at the key tile holding it; the tiles before it are
// wholly outside every window of the block (with T = 4096 and a window of
// 1024, a block reads at most 18 key tiles of 64, not up to 64).
__device__ __forceinline__ int visible_key_begin(const Geometry& g, int q0) {
  return g.causal && g.window > 0 ? int(max(int64_t(0), g.P + q0 - g.window + 1)) : 0;
}
// One past the last query whose window reaches key j (P + i − j < window ⇔
// i < j − P + window): T without a window, 0 for a prefix key the window
// hides from every query. Increasing in j, so a key block's last key bounds
// the queries of the block.
__device__ __forceinline__ int visible_query_end(const Geometry& g, int64_t j) {
  return g.causal && g.window > 0 ? int(max(int64_t(0), min(g.T, j - g.P + g.window))) : int(g.T);
}

// Masking is per tile, not per score: most tiles are wholly visible, and
// there the softmax is one FFMA and one exp2 per score (tested per score,
// the masks' index arithmetic and flag reads outnumbered the MMAs).
//
// Whether key tile [j0, j0 + kN) needs a mask for a warp's 16 queries
// [row0, row0 + 16): some key is padding or past the end (not
// keys_all_real: a vote over the tile's flags `ok`), or under causal
// masking a token key comes after row0 or, with a sliding window, the
// tile's first key lies outside the last query's window (causal_cuts).
// Warp-uniform, so the branch on it never diverges.
template <int kN>
__device__ __forceinline__ bool keys_all_real(const bool* ok, int lane) {
  bool real = true;
#pragma unroll
  for (int c = lane; c < kN; c += 32) real = real && ok[c];
  return __all_sync(0xffffffffu, real);
}
// Keys [k_lo, k_hi] against queries [i_lo, i_hi]: the last key vs the
// first query (causal), the first key vs the last query (window); windows
// only move forward with the query, so the corners decide for the tile.
__device__ __forceinline__ bool causal_cuts(const Geometry& g, int k_lo, int k_hi, int i_lo, int i_hi) {
  return g.causal && (k_hi - int(g.P) > i_lo || (g.window > 0 && int(g.P) + i_hi - k_lo >= g.window));
}

// Sets to −∞ the entries of a warp's 16 × kN accumulator tile c that
// visible(r, col) rejects: r ∈ {0, 1} picks the lane's row (g or g + 8 of
// the m16n8 C layout, attention_mma.cuh), col the column.
template <int kN, class Visible>
__device__ __forceinline__ void mask_tile(float (&c)[kN / 8][4], int tq, Visible visible) {
#pragma unroll
  for (int nt = 0; nt < kN / 8; ++nt) {
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (!visible(e >> 1, nt * 8 + 2 * tq + (e & 1))) c[nt][e] = -INFINITY;
  }
}

// Masks the scores s of the warp's kMT m tiles of queries (rows row0 +
// 16·mt + [0, 16)) against key tile [j0, j0 + kN) with real-key flags ok,
// tile by tile where needed (forward and dq).
template <int kN, int kMT>
__device__ __forceinline__ void mask_queries(float (&s)[kMT][kN / 8][4], const Geometry& g, const bool* ok, int j0,
                                             int row0, int lane) {
  const int row = row0 + lane / 4;  // the lane's query in rows g of m tile 0
  const bool all_real = keys_all_real<kN>(ok, lane);
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
    if (!all_real || causal_cuts(g, j0, j0 + kN - 1, row0 + 16 * mt, row0 + 16 * mt + 15))
      mask_tile<kN>(s[mt], lane % 4, [&](int r, int col) {
        return ok[col] && causal_visible(g, j0 + col, row + 16 * mt + r * 8);
      });
}

// Key/value tile `tile` of kN rows into buffer `buf` (2 buffers of each),
// plus its real-key flags, by the CTA's kThreads threads.
template <int kD, int kN, int kThreads = kMmaThreads>
__device__ __forceinline__ void load_kv_tile(const Geometry& g, bf16* sk, bf16* sv, bool* sok, int tile, int buf,
                                             const bf16* qkv, const bf16* pk, const bf16* pv, const int32_t* mask,
                                             int64_t b, int64_t kvh) {
  constexpr int kS = kD + kPad;
  static_assert(kThreads >= kN, "a thread per key flag");
  const int j0 = tile * kN;
  load_tile<kD, kN, kThreads>(sk + buf * kN * kS, qkv, [&](int r) -> const bf16* {
    return j0 + r < g.S ? key_row(g, qkv, pk, b, kvh, j0 + r) : nullptr;
  });
  load_tile<kD, kN, kThreads>(sv + buf * kN * kS, qkv, [&](int r) -> const bf16* {
    return j0 + r < g.S ? value_row(g, qkv, pv, b, kvh, j0 + r) : nullptr;
  });
  if (threadIdx.x < kN) sok[buf * kN + threadIdx.x] = key_real(g, mask, b, j0 + int(threadIdx.x));
}

// The forward's and dq's double-buffered key sweep: starts copying tile
// it + 1 into the other buffer, then waits until tile `it` (buffer it & 1)
// is in shared memory for every thread.
template <int kD, int kN, int kThreads = kMmaThreads>
__device__ __forceinline__ void next_kv_tile(const Geometry& g, bf16* sk, bf16* sv, bool* sok, int it, int tiles,
                                             const bf16* qkv, const bf16* pk, const bf16* pv, const int32_t* mask,
                                             int64_t b, int64_t kvh) {
  if (it + 1 < tiles) {
    load_kv_tile<kD, kN, kThreads>(g, sk, sv, sok, it + 1, (it + 1) & 1, qkv, pk, pv, mask, b, kvh);
    mma::cp_async_commit();
    mma::cp_async_wait<1>();
  } else {
    mma::cp_async_wait<0>();
  }
  __syncthreads();
}

// Keys per forward tile: 32 at D = 256, where Q (64 rows) and two
// buffers of 64 keys and values would take 165 KiB of shared memory, more
// than an A100 gives a block (163 KiB); 99 KiB with 32.
template <int kD>
constexpr int kFwdKeys = kD == 256 ? 32 : 64;
template <int kD>
constexpr size_t forward_smem() {
  constexpr int kN = kFwdKeys<kD>;
  return size_t(kBlock + 4 * kN) * (kD + kPad) * 2 + 2 * kN;
}

// The forward's 4 warps own 16 query rows (one m tile) each of the CTA's 64.
// (2 warps of 32 rows sharing each K and V fragment between their two m
// tiles, FlashAttention-2's forward layout, measured 25% slower on an H100
// at D = 64: 1.20 → 1.52 ms a GPT-2-medium step.)
constexpr int kFwdThreads = kMmaThreads;
// Grid (B·H, ⌈T/64⌉), query blocks launched last-first (see mma_grid);
// smem: Q (64, D), K and V 2 × (kN, D) each, flags.
template <int kD>
__global__ void __launch_bounds__(kFwdThreads, kFwdBlocks<kD>)
    flash_forward_mma_kernel(Geometry g, bf16* out, float* lse, const bf16* qkv, const bf16* pk, const bf16* pv,
                             const int32_t* mask) {
  constexpr int kN = kFwdKeys<kD>, kS = kD + kPad, kThreads = kFwdThreads, kMT = 1;
  PTUNE_DYNAMIC_SMEM(smem);
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sk = sq + kBlock * kS;
  bf16* sv = sk + 2 * kN * kS;
  bool* sok = reinterpret_cast<bool*>(sv + 2 * kN * kS);
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, tq = lane % 4;
  const int64_t bh = blockIdx.x, b = bh / g.H, h = bh % g.H, kvh = h / g.group;
  const int T = int(g.T), q0 = int(gridDim.y - 1 - blockIdx.y) * kBlock;
  const int row0 = q0 + warp * 16 * kMT;  // the warp's first query; m tile mt starts at row0 + 16·mt
  // The lane's query in accumulator rows g of m tile 0; + 16·mt for tile mt, + 8 for rows g + 8.
  const int row = row0 + lane / 4;

  load_tile<kD, kBlock, kThreads>(sq, qkv, [&](int r) -> const bf16* {
    return q0 + r < T ? qkv + (b * g.T + q0 + r) * g.W + h * g.D : nullptr;
  });
  // Key tiles [first_tile, tiles); tile it sits in buffer it & 1.
  const int first_tile = visible_key_begin(g, q0) / kN, tiles = (visible_key_end(g, q0) + kN - 1) / kN;
  load_kv_tile<kD, kN, kThreads>(g, sk, sv, sok, first_tile, first_tile & 1, qkv, pk, pv, mask, b, kvh);
  mma::cp_async_commit();
  const float scale2 = g.scale * kLog2e;  // score → log2 units: exp2 is one SFU op

  RowFragments<kD, kMT> qa;
  float o[kMT][kD / 8][4] = {};
  // Per m tile and accumulator row half; l: this lane's share of the row sum.
  float m[kMT][2], l[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;
  for (int it = first_tile; it < tiles; ++it) {
    const int buf = it & 1;
    next_kv_tile<kD, kN, kThreads>(g, sk, sv, sok, it, tiles, qkv, pk, pv, mask, b, kvh);
    if (it == first_tile) qa.load(sq, row0 - q0, lane);
    const bool* ok = sok + buf * kN;
    const int j0 = it * kN;
    float s[kMT][kN / 8][4] = {};
    mma_abt<kD, kN, kMT>(s, qa, sk + buf * kN * kS, lane);
    mask_queries<kN, kMT>(s, g, ok, j0, row0, lane);
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
      // m and mx are raw scores; base is the row max in log2 units, so
      // p = 2^(s·scale2 − base) is one FFMA and one exp2.
      float mx[2] = {m[mt][0], m[mt][1]};
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[mt][nt][e]);
      }
      float base[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = quad_max(mx[r]);
        base[r] = mx[r] == -INFINITY ? 0.0f : mx[r] * scale2;  // a row with nothing visible yet keeps p = 0, no NaN
        const float corr = mma::exp2_approx(m[mt][r] * scale2 - base[r]);  // 0 while m = −∞
        m[mt][r] = mx[r];
        l[mt][r] *= corr;
#pragma unroll
        for (int dn = 0; dn < kD / 8; ++dn) {
          o[mt][dn][2 * r] *= corr;
          o[mt][dn][2 * r + 1] *= corr;
        }
      }
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[mt][nt][e] = mma::exp2_approx(fmaf(s[mt][nt][e], scale2, -base[e >> 1]));
          l[mt][e >> 1] += s[mt][nt][e];
        }
      }
    }
    mma_cb<kD, kN, kMT>(o, s, sv + buf * kN * kS, lane);
    __syncthreads();  // the next iteration's copies overwrite this buffer
  }

#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float sum = quad_sum(l[mt][r]);
      const int i = row + 16 * mt + r * 8;
      if (i >= T) continue;
      const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;  // a query that sees nothing outputs 0
      bf16* dst = out + (b * g.T + i) * g.qw + h * g.D + 2 * tq;
#pragma unroll
      for (int dn = 0; dn < kD / 8; ++dn)
        *reinterpret_cast<__nv_bfloat162*>(dst + dn * 8) =
            __floats2bfloat162_rn(o[mt][dn][2 * r] * inv, o[mt][dn][2 * r + 1] * inv);
      if (tq == 0) lse[bh * g.T + i] = sum > 0.0f ? m[mt][r] * g.scale + logf(sum) : -INFINITY;
    }
  }
}

// The backward kernels' warps own kMT m tiles (rows are queries in dq,
// keys in dkv): 4 warps of 16 rows (as the forward), or 2 warps of 32
// (D = 64 without GQA: attention_cuda.cu) that share every fragment of the
// streamed operand between their two m tiles, with half as many rows per
// streamed tile to stay within 255 registers.
template <int kMT>
constexpr int kBwdThreads = kBlock / (16 * kMT) * 32;
template <int kD, int kMT>
constexpr int kBwdBlocks = kMT == 1 ? kDqBlocks<kD> : 4;

// Keys per dq tile: 32 at D = 128 keeps the registers (Q, dO fragments and
// dQ, 160 at D = 128) clear of spilling; 32 with two m tiles, and at D =
// 256 (dQ alone is 128 registers there; Q and dO are re-read, RowFragments).
template <int kD, int kMT = 1>
constexpr int kDqKeys = kD >= 128 || kMT == 2 ? 32 : 64;
template <int kD, int kMT = 1>
constexpr size_t dq_smem() {
  return size_t(2 * kBlock + 4 * kDqKeys<kD, kMT>) * (kD + kPad) * 2 + 2 * kDqKeys<kD, kMT>;
}

// Query block qblock of (b, head) bh; smem: Q, dO (64, D), K and V
// 2 × (kN, D) each, flags. One sweep over the visible key tiles:
// S = Q·Kᵀ, dP = dO·Vᵀ, dS = P∘(dP − δ) with δ (B, H, T) from the δ
// kernel, dQ += dS·K.
template <int kD, int kMT>
__device__ __forceinline__ void dq_block(int64_t bh, int qblock, const Geometry& g, bf16* dqkv, bool add,
                                         const bf16* dout, const bf16* qkv, const bf16* pk, const bf16* pv,
                                         const float* lse, const float* delta, const int32_t* mask) {
  constexpr int kN = kDqKeys<kD, kMT>, kS = kD + kPad, kThreads = kBwdThreads<kMT>;
  PTUNE_DYNAMIC_SMEM(smem);
  bf16* sq = reinterpret_cast<bf16*>(smem);
  bf16* sdo = sq + kBlock * kS;
  bf16* sk = sdo + kBlock * kS;
  bf16* sv = sk + 2 * kN * kS;
  bool* sok = reinterpret_cast<bool*>(sv + 2 * kN * kS);
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, tq = lane % 4;
  const int64_t b = bh / g.H, h = bh % g.H, kvh = h / g.group;
  const int T = int(g.T), q0 = qblock * kBlock;
  const int row0 = q0 + warp * 16 * kMT;  // the warp's first query; m tile mt starts at row0 + 16·mt
  const int row = row0 + lane / 4;        // the lane's query in rows g of m tile 0

  load_tile<kD, kBlock, kThreads>(sq, qkv, [&](int r) -> const bf16* {
    return q0 + r < T ? qkv + (b * g.T + q0 + r) * g.W + h * g.D : nullptr;
  });
  load_tile<kD, kBlock, kThreads>(sdo, dout, [&](int r) -> const bf16* {
    return q0 + r < T ? dout + (b * g.T + q0 + r) * g.qw + h * g.D : nullptr;
  });
  // Key tiles [first_tile, tiles), as the forward's.
  const int first_tile = visible_key_begin(g, q0) / kN, tiles = (visible_key_end(g, q0) + kN - 1) / kN;
  load_kv_tile<kD, kN, kThreads>(g, sk, sv, sok, first_tile, first_tile & 1, qkv, pk, pv, mask, b, kvh);
  mma::cp_async_commit();
  const float scale2 = g.scale * kLog2e;
  // lse2 (log2 units) is +∞ where the query sees no key or does not exist,
  // so p = 2^(s·scale2 − lse2) = 0 there without a test per score.
  float lse2[kMT][2], dlt[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = row + 16 * mt + r * 8;
      const float row_lse = i < T ? lse[bh * g.T + i] : -INFINITY;
      lse2[mt][r] = row_lse == -INFINITY ? INFINITY : row_lse * kLog2e;
      dlt[mt][r] = i < T ? delta[bh * g.T + i] : 0.0f;
    }
  }

  RowFragments<kD, kMT> qa, da;
  float dq[kMT][kD / 8][4] = {};
  for (int it = first_tile; it < tiles; ++it) {
    const int buf = it & 1;
    next_kv_tile<kD, kN, kThreads>(g, sk, sv, sok, it, tiles, qkv, pk, pv, mask, b, kvh);
    if (it == first_tile) {
      qa.load(sq, row0 - q0, lane);
      da.load(sdo, row0 - q0, lane);
    }
    const bool* ok = sok + buf * kN;
    const int j0 = it * kN;
    float s[kMT][kN / 8][4] = {}, dp[kMT][kN / 8][4] = {};
    mma_abt<kD, kN, kMT>(s, qa, sk + buf * kN * kS, lane);
    mma_abt<kD, kN, kMT>(dp, da, sv + buf * kN * kS, lane);  // dP = dO·Vᵀ
    mask_queries<kN, kMT>(s, g, ok, j0, row0, lane);
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = mma::exp2_approx(fmaf(s[mt][nt][e], scale2, -lse2[mt][e >> 1]));
          s[mt][nt][e] = p * (dp[mt][nt][e] - dlt[mt][e >> 1]);  // dS, unscaled
        }
      }
    }
    mma_cb<kD, kN, kMT>(dq, s, sk + buf * kN * kS, lane);
    __syncthreads();  // the next iteration's copies overwrite this buffer
  }

#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = row + 16 * mt + r * 8;
      if (i >= T) continue;
      bf16* dst = dqkv + (b * g.T + i) * g.W + h * g.D + 2 * tq;
#pragma unroll
      for (int dn = 0; dn < kD / 8; ++dn)
        store_pair(dst + dn * 8, g.scale * dq[mt][dn][2 * r], g.scale * dq[mt][dn][2 * r + 1], add);
    }
  }
}

// Queries per dkv tile: 32 at D = 128 keeps the registers (dK, dV: 128 at
// D = 128) clear of spilling; 32 with two m tiles (dK, dV: 128 at D = 64).
template <int kD, int kMT = 1>
constexpr int kDkvQueries = kD >= 128 || kMT == 2 ? 32 : 64;
// Column slices of dK and dV per key block: at D = 256 the two f32
// accumulators of a warp's 16 keys would take 256 registers, so each of two
// blocks accumulates half the columns (128, as at D = 128). Both compute the
// whole Sᵀ and dPᵀ (dot products over all of D): a backward of 6 products
// per score where one block would do 4, against the spilling of the SIMT
// kernels, which were the only D = 256 path before.
template <int kD>
constexpr int kDkvSlices = kD == 256 ? 2 : 1;
// kDq (dQ by atomics) adds the (64 keys, kM queries) dSᵀ tile,
// rows padded by kPad as the others.
template <int kD, int kMT = 1, bool kDq = false>
constexpr size_t dkv_smem() {
  constexpr int kM = kDkvQueries<kD, kMT>;
  return size_t(2 * kBlock + 4 * kM) * (kD + kPad) * 2 + 4 * kM * sizeof(float) +
         (kDq ? size_t(kBlock) * (kM + kPad) * 2 : 0);
}

// The atomic dQ step, by all kThreads threads of a dkv block
// once the (64 keys, kM queries) dSᵀ tile sds is complete: dQ (kM, D) of
// query head h, queries i0.., += dS · K (sk: the block's 64 keys, (64, D)),
// added to dq_acc (B, T, H·D). Warp w takes query m tile w % (kM / 16) and
// a kDW-column slice of D, so every warp holds a 16 × 64 accumulator (32
// floats a lane) at each of the kernel's shapes.
template <int kD, int kM, int kThreads>
__device__ __forceinline__ void add_dq_share(const Geometry& g, float* dq_acc, const bf16* sds, const bf16* sk,
                                             int64_t b, int64_t h, int i0, int warp, int lane) {
  constexpr int kQT = kM / 16, kWarps = kThreads / 32, kDW = kD * kQT / kWarps;
  static_assert(kWarps % kQT == 0 && kDW % 16 == 0, "whole m tiles and 16-column slices per warp");
  const int qt = warp % kQT, c0 = warp / kQT * kDW;
  float c[kDW / 8][4] = {};
#pragma unroll
  for (int kk = 0; kk < kBlock / 16; ++kk) {
    // dS (queries × keys) is sds transposed: .trans over frag_b's
    // matrices gives exactly its A fragment (attention_mma.cuh).
    uint32_t a[4];
    mma::ldmatrix_x4_trans(a, frag_b(sds, kM + kPad, kk * 16, qt * 16, lane));
#pragma unroll
    for (int dp = 0; dp < kDW / 16; ++dp) {
      uint32_t f[4];
      mma::ldmatrix_x4_trans(f, frag_a(sk, kD + kPad, kk * 16, c0 + dp * 16, lane));
      mma::mma_bf16(c[2 * dp], a, f[0], f[1]);
      mma::mma_bf16(c[2 * dp + 1], a, f[2], f[3]);
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = i0 + qt * 16 + lane / 4 + 8 * r;
    if (i >= g.T) continue;
    float* dst = dq_acc + (b * g.T + i) * g.qw + h * g.D + c0 + 2 * (lane % 4);
#pragma unroll
    for (int dn = 0; dn < kDW / 8; ++dn) mma::red_add_f32x2(dst + dn * 8, c[dn][2 * r], c[dn][2 * r + 1]);
  }
}

// Key block kblock of (b, kv head) bk, columns [slice·kDC, (slice + 1)·kDC)
// of its dK and dV (kDC = D / kDkvSlices); smem: K, V (64, D), Q and dO
// 2 × (kM, D) each, the tiles' lse (log2 units) and δ. Token keys
// accumulate into dqkv; prefix keys write their batch row's share into
// part (B, P, 2, KVH·D).
//
// With kDq (dQ by atomics) the block also adds its keys' share
// of dQ, dS·K, to dq_acc (B, T, H·D) f32 (zeroed before; unscaled, see
// flash_dq_finish_kernel), so no dq kernel recomputes S and dP: the
// warps store dSᵀ to shared memory as bf16, then each multiplies one
// 16-query tile of dS by a 64-column slice of K and adds it with f32
// atomics. The order of those additions varies between runs, so dQ is not
// bit-reproducible (FlashAttention-2's dQ is not either).
template <int kD, int kMT, bool kDq = false>
__device__ __forceinline__ void dkv_block(int64_t bk, int kblock, int slice, const Geometry& g, bf16* dqkv, bool add,
                                          float* part, float* dq_acc, const bf16* dout, const bf16* qkv,
                                          const bf16* pk, const bf16* pv, const float* lse, const float* delta,
                                          const int32_t* mask) {
  constexpr int kM = kDkvQueries<kD, kMT>, kS = kD + kPad, kThreads = kBwdThreads<kMT>;
  constexpr int kDC = kD / kDkvSlices<kD>;
  static_assert(kThreads >= kM, "a thread per query's lse and δ");
  static_assert(!kDq || kDC == kD, "dq_atomic adds each block's dQ share once: whole columns only");
  const int c0 = slice * kDC;  // the block's first column of dK and dV
  PTUNE_DYNAMIC_SMEM(smem);
  bf16* sk = reinterpret_cast<bf16*>(smem);
  bf16* sv = sk + kBlock * kS;
  bf16* sq = sv + kBlock * kS;
  bf16* sdo = sq + 2 * kM * kS;
  float* sl = reinterpret_cast<float*>(sdo + 2 * kM * kS);
  float* sd = sl + 2 * kM;
  bf16* sds = reinterpret_cast<bf16*>(sd + 2 * kM);  // kDq: dSᵀ (64 keys, kM queries), row stride kM + kPad
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, tq = lane % 4;
  const int64_t b = bk / g.KVH, kvh = bk % g.KVH;
  const int T = int(g.T), P = int(g.P), j0 = kblock * kBlock;
  const int first = warp * 16 * kMT;  // the warp's first key in the block; m tile mt starts at first + 16·mt
  // The lane's key in accumulator rows g of m tile 0; + 16·mt for tile mt, + 8 for rows g + 8.
  const int key = j0 + first + lane / 4;

  load_tile<kD, kBlock, kThreads>(sk, qkv, [&](int r) -> const bf16* {
    return j0 + r < g.S ? key_row(g, qkv, pk, b, kvh, j0 + r) : nullptr;
  });
  load_tile<kD, kBlock, kThreads>(sv, qkv, [&](int r) -> const bf16* {
    return j0 + r < g.S ? value_row(g, qkv, pv, b, kvh, j0 + r) : nullptr;
  });
  // Causal: queries before the block's first token key never see it, and
  // with a sliding window nor do those whose window starts after its last
  // key j0 + 63, i.e. from query j0 + 63 − P + window on. [q_begin, q_end)
  // may be empty (prefix blocks more than a window before the first
  // token): then the block only stores dK = dV = 0 (its K, V copied above
  // go unused: a branch around the copies cost the D = 96 dkv spills).
  const int q_begin = g.causal ? max(0, j0 - P) : 0;
  const int q_end = visible_query_end(g, j0 + kBlock - 1);
  const int qtiles = max(0, q_end - q_begin + kM - 1) / kM, steps = int(g.group) * qtiles;
  // Step n: query head kvh·group + n / qtiles, queries q_begin + (n % qtiles)·kM + [0, kM).
  auto load_queries = [&](int n, int buf) {
    const int64_t h = kvh * g.group + n / qtiles, bh = b * g.H + h;
    const int i0 = q_begin + (n % qtiles) * kM;
    load_tile<kD, kM, kThreads>(sq + buf * kM * kS, qkv, [&](int r) -> const bf16* {
      return i0 + r < T ? qkv + (b * g.T + i0 + r) * g.W + h * g.D : nullptr;
    });
    load_tile<kD, kM, kThreads>(sdo + buf * kM * kS, dout, [&](int r) -> const bf16* {
      return i0 + r < T ? dout + (b * g.T + i0 + r) * g.qw + h * g.D : nullptr;
    });
    if (threadIdx.x < kM) {
      const int i = i0 + int(threadIdx.x);
      // +∞ where the query sees no key or does not exist: p = 0 (see the dq kernel)
      const float row_lse = i < T ? lse[bh * g.T + i] : -INFINITY;
      sl[buf * kM + threadIdx.x] = row_lse == -INFINITY ? INFINITY : row_lse * kLog2e;
      sd[buf * kM + threadIdx.x] = i < T ? delta[bh * g.T + i] : 0.0f;
    }
  };
  if (steps > 0) load_queries(0, 0);
  mma::cp_async_commit();
  if (steps == 0) mma::cp_async_wait<0>();  // no copy outlives the block
  bool real[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
    real[mt][0] = key_real(g, mask, b, key + 16 * mt), real[mt][1] = key_real(g, mask, b, key + 16 * mt + 8);
  const float scale2 = g.scale * kLog2e;

  float dk[kMT][kDC / 8][4] = {}, dv[kMT][kDC / 8][4] = {};
  for (int n = 0; n < steps; ++n) {
    const int buf = n & 1, i0 = q_begin + (n % qtiles) * kM;
    if (n + 1 < steps) {
      load_queries(n + 1, buf ^ 1);
      mma::cp_async_commit();
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* qt = sq + buf * kM * kS;
    const bf16* dt = sdo + buf * kM * kS;
    const float* lt = sl + buf * kM;
    const float* delt = sd + buf * kM;
    // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ for the warp's 16·kMT keys × kM queries; K
    // and V fragments are re-read from shared memory (registers go to dK,
    // dV), each Q and dO fragment serves every m tile.
    float st[kMT][kM / 8][4] = {}, dpt[kMT][kM / 8][4] = {};
#pragma unroll
    for (int ks = 0; ks < kD / 16; ++ks) {
      uint32_t ka[kMT][4], va[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        mma::ldmatrix_x4(ka[mt], frag_a(sk, kS, first + 16 * mt, ks * 16, lane));
        mma::ldmatrix_x4(va[mt], frag_a(sv, kS, first + 16 * mt, ks * 16, lane));
      }
#pragma unroll
      for (int np = 0; np < kM / 16; ++np) {
        uint32_t f[4];
        mma::ldmatrix_x4(f, frag_b(qt, kS, np * 16, ks * 16, lane));
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          mma::mma_bf16(st[mt][2 * np], ka[mt], f[0], f[1]);
          mma::mma_bf16(st[mt][2 * np + 1], ka[mt], f[2], f[3]);
        }
        mma::ldmatrix_x4(f, frag_b(dt, kS, np * 16, ks * 16, lane));
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          mma::mma_bf16(dpt[mt][2 * np], va[mt], f[0], f[1]);
          mma::mma_bf16(dpt[mt][2 * np + 1], va[mt], f[2], f[3]);
        }
      }
    }
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
      // Rows are keys: a padding key's row may hold anything, since products
      // are row-local and its dK, dV are never stored; only the causal mask
      // (a token key after the tile's first query, or with a window the
      // tile's last query past the first key's reach) needs the scores masked.
      const int mkey = key + 16 * mt;
      if (causal_cuts(g, mkey - lane / 4, mkey - lane / 4 + 15, i0, i0 + kM - 1))
        mask_tile<kM>(st[mt], tq, [&](int r, int col) { return causal_visible(g, mkey + r * 8, i0 + col); });
#pragma unroll
      for (int nt = 0; nt < kM / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = nt * 8 + 2 * tq + (e & 1);
          const float p = mma::exp2_approx(fmaf(st[mt][nt][e], scale2, -lt[col]));
          st[mt][nt][e] = p;
          dpt[mt][nt][e] = p * (dpt[mt][nt][e] - delt[col]);  // dSᵀ, unscaled
        }
      }
    }
    if constexpr (kDq) {
      // dSᵀ rows of keys that are padding or past the end hold anything
      // (see above) and would reach dQ: they are stored as 0.
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          bf16* dst = sds + (first + 16 * mt + lane / 4 + 8 * r) * (kM + kPad) + 2 * tq;
#pragma unroll
          for (int nt = 0; nt < kM / 8; ++nt)
            mma::st_shared_b32(dst + nt * 8, real[mt][r] ? mma::pack_bf16(dpt[mt][nt][2 * r], dpt[mt][nt][2 * r + 1])
                                                         : 0u);
        }
      }
    }
    mma_cb<kDC, kM, kMT, kS>(dv, st, dt + c0, lane);   // dV += Pᵀ·dO, the block's columns
    mma_cb<kDC, kM, kMT, kS>(dk, dpt, qt + c0, lane);  // dK += dSᵀ·Q
    if constexpr (kDq) {
      __syncthreads();  // every warp's dSᵀ rows are in sds
      add_dq_share<kD, kM, kThreads>(g, dq_acc, sds, sk, b, kvh * g.group + n / qtiles, i0, warp, lane);
    }
    __syncthreads();
  }

#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int j = key + 16 * mt + r * 8;
      if (j >= g.S) continue;
      if (!real[mt][r]) {
        // A padding key's gradient is 0. Its registers hold garbage (its
        // scores were never masked), so kWrite stores zeros, kAdd nothing.
        if (add) continue;
        bf16* dst = dqkv + (b * g.T + (j - P)) * g.W + g.qw + kvh * g.D + c0 + 2 * tq;
#pragma unroll
        for (int dn = 0; dn < kDC / 8; ++dn) {
          store_pair(dst + dn * 8, 0.0f, 0.0f, false);
          store_pair(dst + g.kvw + dn * 8, 0.0f, 0.0f, false);
        }
        continue;
      }
      if (j < P) {
        if (part == nullptr) continue;  // prefix gradients not wanted
        float* dst = part + ((b * g.P + j) * 2) * g.kvw + kvh * g.D + c0 + 2 * tq;
#pragma unroll
        for (int dn = 0; dn < kDC / 8; ++dn) {
          *reinterpret_cast<float2*>(dst + dn * 8) =
              make_float2(g.scale * dk[mt][dn][2 * r], g.scale * dk[mt][dn][2 * r + 1]);
          *reinterpret_cast<float2*>(dst + g.kvw + dn * 8) = make_float2(dv[mt][dn][2 * r], dv[mt][dn][2 * r + 1]);
        }
      } else {
        bf16* dst = dqkv + (b * g.T + (j - P)) * g.W + g.qw + kvh * g.D + c0 + 2 * tq;
#pragma unroll
        for (int dn = 0; dn < kDC / 8; ++dn) {
          store_pair(dst + dn * 8, g.scale * dk[mt][dn][2 * r], g.scale * dk[mt][dn][2 * r + 1], add);
          store_pair(dst + g.kvw + dn * 8, dv[mt][dn][2 * r], dv[mt][dn][2 * r + 1], add);
        }
      }
    }
  }
}

// The backward kernels (attention_cuda.cu picks the form). Two launches: dq on grid (B·H, ⌈T/64⌉), query
// blocks last-first as the forward's, then dkv on grid (B·KVH·slices,
// ⌈S/64⌉), the column slices of a key block side by side.
template <int kD, int kMT = 1>
__global__ void __launch_bounds__(kBwdThreads<kMT>, (kBwdBlocks<kD, kMT>))
    flash_dq_mma_kernel(Geometry g, bf16* dqkv, bool add, const bf16* dout, const bf16* qkv, const bf16* pk,
                        const bf16* pv, const float* lse, const float* delta, const int32_t* mask) {
  dq_block<kD, kMT>(blockIdx.x, int(gridDim.y - 1 - blockIdx.y), g, dqkv, add, dout, qkv, pk, pv, lse, delta, mask);
}
// kDq: dQ by atomics (dq_acc, no dq kernel; see dkv_block).
template <int kD, int kMT = 1, bool kDq = false>
__global__ void __launch_bounds__(kBwdThreads<kMT>, (kBwdBlocks<kD, kMT>))
    flash_dkv_mma_kernel(Geometry g, bf16* dqkv, bool add, float* part, float* dq_acc, const bf16* dout,
                         const bf16* qkv, const bf16* pk, const bf16* pv, const float* lse, const float* delta,
                         const int32_t* mask) {
  constexpr int kSlices = kDkvSlices<kD>;
  dkv_block<kD, kMT, kDq>(blockIdx.x / kSlices, int(blockIdx.y), int(blockIdx.x % kSlices), g, dqkv, add, part,
                          dq_acc, dout, qkv, pk, pv, lse, delta, mask);
}

// The atomic dQ's last step: the query part of dqkv = scale ·
// dq_acc (stored, or added under `add`), a pair of columns a thread.
__global__ void flash_dq_finish_kernel(Geometry g, bf16* dqkv, bool add, const float* dq_acc) {
  const int64_t pairs = g.B * g.T * g.qw / 2;
  for (int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; n < pairs; n += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = n / (g.qw / 2), col = 2 * (n % (g.qw / 2));
    const float2 v = *reinterpret_cast<const float2*>(dq_acc + 2 * n);
    store_pair(dqkv + row * g.W + col, g.scale * v.x, g.scale * v.y, add);
  }
}

// Or one launch (measured faster than two on an H100, docs/cuda.md): the two write
// disjoint parts of dqkv, so a 1-D grid runs the dkv blocks (heaviest,
// early keys, first) and then the dq blocks (late queries first), and the
// tail of one kernel overlaps the other instead of idling SMs twice.
// D ≤ 128 only (one column slice per key block).
static_assert(kDqBlocks<64> == kDkvBlocks<64> && kDqBlocks<128> == kDkvBlocks<128>, "one register budget");
template <int kD, int kMT = 1>
__global__ void __launch_bounds__(kBwdThreads<kMT>, (kBwdBlocks<kD, kMT>))
    flash_backward_mma_kernel(Geometry g, bf16* dqkv, bool add, float* part, const bf16* dout, const bf16* qkv,
                              const bf16* pk, const bf16* pv, const float* lse, const float* delta,
                              const int32_t* mask) {
  static_assert(kDkvSlices<kD> == 1, "one dkv block per key block");
  const int64_t n = blockIdx.x, kv_heads = g.B * g.KVH, kv_blocks = kv_heads * ((g.S + kBlock - 1) / kBlock);
  if (n < kv_blocks) {
    dkv_block<kD, kMT>(n % kv_heads, int(n / kv_heads), 0, g, dqkv, add, part, nullptr, dout, qkv, pk, pv, lse,
                       delta, mask);
  } else {
    const int64_t m = n - kv_blocks, q_heads = g.B * g.H, q_blocks = (g.T + kBlock - 1) / kBlock;
    dq_block<kD, kMT>(m % q_heads, int(q_blocks - 1 - m / q_heads), g, dqkv, add, dout, qkv, pk, pv, lse, delta,
                      mask);
  }
}

// (heads, ⌈rows/64⌉): x runs over the (b, head) pairs fastest, so blocks
// launch row block by row block. Under causal masking the work of a block
// is uneven — a late query block sees the most keys, an early key block the
// most queries — and the kernels map blockIdx.y so that the heaviest
// blocks launch first and the light ones fill the last wave.
inline dim3 mma_grid(int64_t heads, int64_t rows) {
  return dim3(unsigned(heads), unsigned((rows + kBlock - 1) / kBlock));
}

// One launch of a tensor-core kernel: attention_cuda.cu launches with it
// and the host emulation (tests/emulation) replays it.
struct MmaLaunch {
  dim3 grid;
  int threads;
  size_t smem;
};
template <int kD>
MmaLaunch forward_launch(const Geometry& g) {
  return {mma_grid(g.B * g.H, g.T), kFwdThreads, forward_smem<kD>()};
}
template <int kD, int kMT = 1>
MmaLaunch dq_launch(const Geometry& g) { return {mma_grid(g.B * g.H, g.T), kBwdThreads<kMT>, dq_smem<kD, kMT>()}; }
template <int kD, int kMT = 1, bool kDq = false>
MmaLaunch dkv_launch(const Geometry& g) {
  return {mma_grid(g.B * g.KVH * kDkvSlices<kD>, g.S), kBwdThreads<kMT>, dkv_smem<kD, kMT, kDq>()};
}
inline MmaLaunch dq_finish_launch(const Geometry& g) {
  const int64_t blocks = (g.B * g.T * g.qw / 2 + 255) / 256;
  return {dim3(unsigned(blocks < 65536 ? blocks : 65536)), 256, 0};
}
template <int kD, int kMT = 1>
MmaLaunch backward_launch(const Geometry& g) {
  const dim3 q = mma_grid(g.B * g.H, g.T), k = mma_grid(g.B * g.KVH, g.S);
  const int64_t blocks = int64_t(q.x) * q.y + int64_t(k.x) * k.y;  // the launcher checks it fits
  const size_t smem = dq_smem<kD, kMT>() > dkv_smem<kD, kMT>() ? dq_smem<kD, kMT>() : dkv_smem<kD, kMT>();
  return {dim3(unsigned(blocks < (int64_t(1) << 31) ? blocks : int64_t(1) << 31)), kBwdThreads<kMT>, smem};
}

}  // namespace ptune::ops::cuda::flash
