// LayerNorm / RMSNorm on the GPU, statistics in f32, x / y in f32 or bf16,
// w / b in f32 or bf16. Forward writes; backward accumulates into dx and
// into the f32 master gradients dw / db (a frozen norm passes none).
//
// A block walks rows (grid-stride); a thread owns chunks threadIdx.x +
// i·blockDim.x of N columns, the same in every row, moved with 16-byte
// accesses (Vec: N = 8 bf16 / 4 f32). The first R chunks of a thread stay
// in registers, so x is read once (rows up to kMaxThreads·kMaxRegs·N wide:
// 16384 bf16, 8192 f32); wider rows re-read the rest. R (1, 2 or 4) is
// picked per launch for the row width: these kernels are bandwidth-bound
// and their registers set the occupancy, so a GPT-2 row (1024 bf16, one
// chunk a thread) must not pay for a cache sized for 4. A row whose
// width is not a multiple of N or an operand off 16-byte alignment takes
// the N = 1 instantiation, same math.
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

#include <algorithm>
#include <climits>

#include "framework/ops/cuda/head_norm.cuh"

namespace ptune::ops::cuda {

namespace {

constexpr int kMaxThreads = 512;  // ≤ 128 registers a thread: the cache fits
constexpr int kMaxRegs = 4;
constexpr int64_t kPartialBlocks = 512;  // backward blocks when dw / db are summed per block

// Calls f(k, slot) for every chunk k of the row this thread owns; slot < R
// names its register slot, slot == R a chunk beyond the cache.
template <int R, class F>
__device__ __forceinline__ void for_each_chunk(int64_t chunks, F&& f) {
#pragma unroll
  for (int i = 0; i < R; ++i) {
    const int64_t k = threadIdx.x + int64_t(i) * blockDim.x;
    if (k < chunks) f(k, i);
  }
  for (int64_t k = threadIdx.x + int64_t(R) * blockDim.x; k < chunks; k += blockDim.x) f(k, R);
}

// Rows (n, c): h = residual + dropout(a) (written to sum) when residual is
// given, else h = x; then y = norm(h)·w + b, mean / rstd (n) per row.
template <class T, class W, int N, int R>
__global__ void __launch_bounds__(kMaxThreads)
    norm_forward_kernel(bool layer, T* y, T* sum, float* mean, float* rstd, const T* x, const T* residual,
                        const W* w, const W* b, int64_t n, int64_t c, float eps, float p, float keep_scale,
                        uint64_t seed, uint64_t offset) {
  __shared__ float shared[32];
  const int64_t chunks = c / N;
  const T* h_src = residual ? sum : x;  // where h lives once materialised
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const int64_t base = row * c;
    float h[R][N];
    auto load_h = [&](int64_t k, int slot, float(&hk)[N]) {
      if (slot < R) {
#pragma unroll
        for (int e = 0; e < N; ++e) hk[e] = h[slot][e];
      } else {
        const Vec<T, N> v = Vec<T, N>::load(h_src + base + k * N);
#pragma unroll
        for (int e = 0; e < N; ++e) hk[e] = v[e];
      }
    };

    float s = 0.0f;
    for_each_chunk<R>(chunks, [&](int64_t k, int slot) {
      const int64_t j = base + k * N;
      Vec<T, N> hv;
      if (residual) {  // fused entry: h is rounded to T as stored in sum, then normalised
        const Vec<T, N> r = Vec<T, N>::load(residual + j);
        Vec<T, N> a;
        float u[N] = {};
        if (x) a = Vec<T, N>::load(x + j);
        if (x && p > 0.0f) philox_uniforms<N>(seed, offset + uint64_t(j), u);
#pragma unroll
        for (int e = 0; e < N; ++e) {
          float av = 0.0f;
          if (x) {
            av = a[e];
            if (p > 0.0f) av = u[e] >= p ? av * keep_scale : 0.0f;
          }
          hv.set(e, r[e] + av);
        }
        hv.store(sum + j);
      } else {
        hv = Vec<T, N>::load(x + j);
      }
#pragma unroll
      for (int e = 0; e < N; ++e) {
        if (slot < R) h[slot][e] = hv[e];
        s += hv[e];
      }
    });
    const float m = layer ? block_sum(s, shared) / float(c) : 0.0f;

    float v = 0.0f;
    for_each_chunk<R>(chunks, [&](int64_t k, int slot) {
      float hk[N];
      load_h(k, slot, hk);
#pragma unroll
      for (int e = 0; e < N; ++e) v += (hk[e] - m) * (hk[e] - m);
    });
    const float r = rsqrtf(block_sum(v, shared) / float(c) + eps);

    for_each_chunk<R>(chunks, [&](int64_t k, int slot) {
      float hk[N];
      load_h(k, slot, hk);
      const Vec<W, N> wv = Vec<W, N>::load(w + k * N);
      Vec<W, N> bv;
      if (b) bv = Vec<W, N>::load(b + k * N);
      Vec<T, N> yv;
#pragma unroll
      for (int e = 0; e < N; ++e) yv.set(e, (hk[e] - m) * r * wv[e] + (b ? bv[e] : 0.0f));
      yv.store(y + base + k * N);
    });
    if (threadIdx.x == 0) {
      if (mean) mean[row] = m;
      rstd[row] = r;
    }
  }
}

// x̂ = (x − μ)·r, g = dy·w: dx += r·(g − mean(g) − x̂·mean(g·x̂)) (no mean(g)
// for RMSNorm); dw += Σ_rows dy·x̂, db += Σ_rows dy. With `partial`, a block
// sums its rows' dw / db in shared memory (2c floats, each column owned by
// one thread) and adds them with one atomic per column at the end, instead
// of one per row.
template <class T, class W, int N, int R>
__global__ void __launch_bounds__(kMaxThreads)
    norm_backward_kernel(bool layer, T* dx, float* dw, float* db, const T* dy, const T* x, const W* w,
                         const float* mean, const float* rstd, int64_t n, int64_t c, bool partial) {
  extern __shared__ float partial_sums[];  // (2, c) when partial
  __shared__ float shared[32];
  float* dw_part = partial && dw ? partial_sums : nullptr;
  float* db_part = partial && db ? partial_sums + c : nullptr;
  if (partial) {
    for (int64_t j = threadIdx.x; j < 2 * c; j += blockDim.x) partial_sums[j] = 0.0f;
    __syncthreads();
  }
  const int64_t chunks = c / N;
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const int64_t base = row * c;
    const float m = layer ? mean[row] : 0.0f, r = rstd[row];
    float xhat[R][N], g[R][N];
    // x̂, g and dy of chunk k from memory.
    auto read = [&](int64_t k, float(&xk)[N], float(&gk)[N], float(&dk)[N]) {
      const Vec<T, N> xv = Vec<T, N>::load(x + base + k * N), dv = Vec<T, N>::load(dy + base + k * N);
      const Vec<W, N> wv = Vec<W, N>::load(w + k * N);
#pragma unroll
      for (int e = 0; e < N; ++e) {
        xk[e] = (xv[e] - m) * r;
        dk[e] = dv[e];
        gk[e] = dv[e] * wv[e];
      }
    };

    float g_sum = 0.0f, gx_sum = 0.0f;
    for_each_chunk<R>(chunks, [&](int64_t k, int slot) {
      float xk[N], gk[N], dk[N];
      read(k, xk, gk, dk);
#pragma unroll
      for (int e = 0; e < N; ++e) {
        g_sum += gk[e];
        gx_sum += gk[e] * xk[e];
        const int64_t j = k * N + e;
        if (dw_part) dw_part[j] += dk[e] * xk[e];
        else if (dw) atomicAdd(dw + j, dk[e] * xk[e]);
        if (db_part) db_part[j] += dk[e];
        else if (db) atomicAdd(db + j, dk[e]);
        if (slot < R) {
          xhat[slot][e] = xk[e];
          g[slot][e] = gk[e];
        }
      }
    });
    const float g_mean = layer ? block_sum(g_sum, shared) / float(c) : 0.0f;
    const float gx_mean = block_sum(gx_sum, shared) / float(c);

    for_each_chunk<R>(chunks, [&](int64_t k, int slot) {
      float xk[N], gk[N], dk[N];
      if (slot < R) {
#pragma unroll
        for (int e = 0; e < N; ++e) {
          xk[e] = xhat[slot][e];
          gk[e] = g[slot][e];
        }
      } else {
        read(k, xk, gk, dk);
      }
      T* dxk = dx + base + k * N;
      Vec<T, N> o = Vec<T, N>::load(dxk);
#pragma unroll
      for (int e = 0; e < N; ++e) o.set(e, o[e] + r * (gk[e] - g_mean - xk[e] * gx_mean));
      o.store(dxk);
    });
  }
  if (partial) {
    __syncthreads();
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      if (dw) atomicAdd(dw + j, partial_sums[j]);
      if (db) atomicAdd(db + j, partial_sums[c + j]);
    }
  }
}

// A row of `chunks` gets up to 128 threads while there is work, more (up to
// kMaxThreads) only when kMaxRegs chunks each would not cover it; regs is
// the register cache that then holds a thread's share (1, 2 or 4).
//
// (Fewer threads a row, each with 4 chunks in flight — one warp for a
// GPT-2-medium row — measured slower on an H100: the fused residual + norm
// by 16–23%, the norm backward +11% (GPT-2-medium) and −5% (LLaMA-1B).)
struct RowLaunch {
  int threads, regs;
};
RowLaunch row_launch(int64_t chunks) {
  int64_t t = std::max((chunks + kMaxRegs - 1) / kMaxRegs, std::min<int64_t>(chunks, 128));
  t = std::clamp<int64_t>((t + 31) / 32 * 32, 32, kMaxThreads);
  const int64_t per_thread = (chunks + t - 1) / t;
  return {int(t), per_thread <= 1 ? 1 : per_thread <= 2 ? 2 : kMaxRegs};
}

// Instantiates a kernel for the register cache of a RowLaunch.
#define PTUNE_ROW_REGS_DISPATCH(regs, R, ...)              \
  do {                                                     \
    if ((regs) == 1) { constexpr int R = 1; __VA_ARGS__; } \
    else if ((regs) == 2) { constexpr int R = 2; __VA_ARGS__; } \
    else { constexpr int R = kMaxRegs; __VA_ARGS__; }      \
  } while (0)

unsigned row_blocks(int64_t rows, int64_t cap) { return unsigned(std::min(rows, cap)); }

template <class T>
const T* ptr(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.raw()) : nullptr; }
template <class T>
T* mptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw()) : nullptr; }

void launch_forward(NormKind kind, const Tensor& y, const Tensor& sum, const Tensor& mean, const Tensor& rstd,
                    const Tensor& x, const Tensor& residual, const Tensor& w, const Tensor& b, float eps, float p,
                    uint64_t seed, uint64_t offset, const Stream& stream) {
  const char* op = "norm_forward";
  check_cuda_tensor(y, "y", op);
  check_cuda_tensor(w, "w", op);
  const int64_t c = y.size(-1), n = y.numel() / c;
  const bool layer = kind == NormKind::kLayerNorm;
  PTUNE_CHECK(w.numel() == c, "{}: y {} w {}", op, y.shape().str(), w.shape().str());
  if (x.defined()) PTUNE_CHECK(x.numel() == y.numel() && x.dtype() == y.dtype(), "{}: x {} y {}", op, x.shape().str(),
                               y.shape().str());
  PTUNE_CHECK(rstd.numel() == n && rstd.dtype() == DType::kF32, "{}: rstd {} for {} rows (f32)", op,
              rstd.shape().str(), n);
  if (layer) PTUNE_CHECK(mean.defined() && mean.numel() == n && mean.dtype() == DType::kF32,
                         "{}: LayerNorm needs mean ({}) f32", op, n);
  if (b.defined()) PTUNE_CHECK(b.numel() == c && b.dtype() == w.dtype(), "{}: bias {} for width {}", op,
                               b.shape().str(), c);
  if (n == 0) return;
  const float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
  PTUNE_FLOAT_DISPATCH(y.dtype(), T, op,
    PTUNE_FLOAT_DISPATCH(w.dtype(), W, op, {
      constexpr int kN = vec_width<T>();
      const bool vec = c % kN == 0 && vector_aligned(mptr<T>(y), mptr<T>(sum), ptr<T>(x), ptr<T>(residual)) &&
                       vector_aligned(ptr<W>(w), ptr<W>(b));
      const RowLaunch rl = row_launch(vec ? c / kN : c);
      PTUNE_ROW_REGS_DISPATCH(rl.regs, R, {
        const auto kernel = vec ? norm_forward_kernel<T, W, kN, R> : norm_forward_kernel<T, W, 1, R>;
        kernel<<<row_blocks(n, INT32_MAX), rl.threads, 0, raw(stream)>>>(
            layer, mptr<T>(y), mptr<T>(sum), layer ? mptr<float>(mean) : nullptr, mptr<float>(rstd), ptr<T>(x),
            ptr<T>(residual), ptr<W>(w), ptr<W>(b), n, c, eps, p, keep_scale, seed, offset);
      });
    }));
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace

void head_rms_norm_forward(const Tensor& qkv, int64_t col, const Tensor& saved, const Tensor& rstd, const Tensor& w,
                           float eps, const Stream& stream) {
  const char* op = "head_rms_norm_forward";
  check_cuda_tensor(saved, "saved", op);
  check_cuda_tensor(w, "w", op);
  const HeadNormLayout l = head_norm_layout(op, qkv, col, saved, rstd, w);
  const int64_t vectors = l.n * l.heads;
  PTUNE_FLOAT_DISPATCH(qkv.dtype(), T, op,
    PTUNE_FLOAT_DISPATCH(w.dtype(), W, op, {
      // d = 32, 64, 128, 256 with aligned operands: a lane's elements in one access.
      const int per = head_norm::lane_path(l.d, mptr<T>(qkv), mptr<T>(saved), ptr<W>(w), l.width, col);
      if (per > 0) {
        head_norm::with_per(per, [&](auto p) {
          head_norm::forward_lane_kernel<T, W, decltype(p)::value>
              <<<head_norm::blocks(vectors), head_norm::kThreads, 0, raw(stream)>>>(
                  mptr<T>(qkv), mptr<T>(saved), mptr<float>(rstd), ptr<W>(w), vectors, l.heads, l.width, col, eps);
        });
      } else {
        head_norm::forward_kernel<T, W><<<head_norm::blocks(vectors), head_norm::kThreads, 0, raw(stream)>>>(
            mptr<T>(qkv), mptr<T>(saved), mptr<float>(rstd), ptr<W>(w), vectors, l.heads, l.width, col, l.d, eps);
      }
    }));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void head_rms_norm_backward(const Tensor& dqkv, int64_t col, const Tensor& saved, const Tensor& rstd,
                            const Tensor& w, const Stream& stream) {
  const char* op = "head_rms_norm_backward";
  check_cuda_tensor(saved, "saved", op);
  check_cuda_tensor(w, "w", op);
  const HeadNormLayout l = head_norm_layout(op, dqkv, col, saved, rstd, w);
  const int64_t vectors = l.n * l.heads;
  PTUNE_FLOAT_DISPATCH(dqkv.dtype(), T, op,
    PTUNE_FLOAT_DISPATCH(w.dtype(), W, op, {
      const int per = head_norm::lane_path(l.d, mptr<T>(dqkv), ptr<T>(saved), ptr<W>(w), l.width, col);
      if (per > 0) {
        head_norm::with_per(per, [&](auto p) {
          head_norm::backward_lane_kernel<T, W, decltype(p)::value>
              <<<head_norm::blocks(vectors), head_norm::kThreads, 0, raw(stream)>>>(
                  mptr<T>(dqkv), ptr<T>(saved), ptr<float>(rstd), ptr<W>(w), vectors, l.heads, l.width, col);
        });
      } else {
        head_norm::backward_kernel<T, W><<<head_norm::blocks(vectors), head_norm::kThreads, 0, raw(stream)>>>(
            mptr<T>(dqkv), ptr<T>(saved), ptr<float>(rstd), ptr<W>(w), vectors, l.heads, l.width, col, l.d);
      }
    }));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void norm_forward(NormKind kind, const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                  const Tensor& w, const Tensor& b, float eps, const Stream& stream) {
  PTUNE_CHECK(x.defined(), "norm_forward: x is undefined");
  launch_forward(kind, y, Tensor(), mean, rstd, x, Tensor(), w, b, eps, 0.0f, 0, 0, stream);
}

void residual_norm_forward(NormKind kind, const Tensor& y, const Tensor& sum, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& a, const Tensor& residual, const Tensor& w,
                                   const Tensor& b, float eps, float p, uint64_t seed, uint64_t offset,
                                   const Stream& stream) {
  PTUNE_CHECK(p >= 0.0f && p < 1.0f, "dropout probability {} must be in [0, 1)", p);
  PTUNE_CHECK(residual.defined() && sum.defined() && residual.numel() == y.numel() && sum.numel() == y.numel() &&
                  residual.dtype() == y.dtype() && sum.dtype() == y.dtype(),
              "residual_norm_forward: residual and sum must match y {}", y.shape().str());
  launch_forward(kind, y, sum, mean, rstd, a, residual, w, b, eps, p, seed, offset, stream);
}

void norm_backward(NormKind kind, const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                   const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd, const Stream& stream) {
  const char* op = "norm_backward";
  check_cuda_tensor(x, "x", op);
  const int64_t c = x.size(-1), n = x.numel() / c;
  const bool layer = kind == NormKind::kLayerNorm;
  PTUNE_CHECK(dx.numel() == x.numel() && dy.numel() == x.numel() && dx.dtype() == x.dtype() && dy.dtype() == x.dtype(),
              "{}: x {} dx {} dy {}", op, x.shape().str(), dx.shape().str(), dy.shape().str());
  if (dw.defined()) PTUNE_CHECK(dw.numel() == c && dw.dtype() == DType::kF32, "{}: dw must be ({}) f32", op, c);
  if (db.defined()) PTUNE_CHECK(db.numel() == c && db.dtype() == DType::kF32, "{}: db must be ({}) f32", op, c);
  if (n == 0) return;
  // Per-block dw / db partials while 2c floats fit the default shared memory.
  const size_t partial_bytes = 2 * size_t(c) * sizeof(float);
  const bool partial = (dw.defined() || db.defined()) && partial_bytes <= 48 * 1024;
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
    PTUNE_FLOAT_DISPATCH(w.dtype(), W, op, {
      constexpr int kN = vec_width<T>();
      const bool vec = c % kN == 0 && vector_aligned(mptr<T>(dx), ptr<T>(dy), ptr<T>(x)) && vector_aligned(ptr<W>(w));
      const RowLaunch rl = row_launch(vec ? c / kN : c);
      PTUNE_ROW_REGS_DISPATCH(rl.regs, R, {
        const auto kernel = vec ? norm_backward_kernel<T, W, kN, R> : norm_backward_kernel<T, W, 1, R>;
        kernel<<<row_blocks(n, partial ? kPartialBlocks : INT32_MAX), rl.threads, partial ? partial_bytes : 0,
                 raw(stream)>>>(layer, mptr<T>(dx), mptr<float>(dw), mptr<float>(db), ptr<T>(dy), ptr<T>(x),
                                ptr<W>(w), layer ? ptr<float>(mean) : nullptr, ptr<float>(rstd), n, c, partial);
      });
    }));
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
