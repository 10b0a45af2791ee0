// LayerNorm / RMSNorm on the GPU: one block per row, statistics in f32,
// x / y in f32 or bf16, w / b in f32 or bf16. dw / db are f32 master
// gradients, accumulated with atomics (a frozen norm passes none).
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

constexpr int kThreads = 256;

// One row: h = residual + dropout(a) (written to sum) when residual is
// given, else h = x; then y = norm(h)·w + b.
template <class T, class W>
__global__ void norm_forward_kernel(bool layer, T* y, T* sum, float* mean, float* rstd, const T* x, const T* residual,
                                    const W* w, const W* b, int64_t c, float eps, float p, float keep_scale,
                                    uint64_t seed, uint64_t offset) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const T* xi = x ? x + row * c : nullptr;
  T* yi = y + row * c;
  if (residual) {  // fused entry: materialise h into sum first
    const T* ri = residual + row * c;
    T* si = sum + row * c;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
      float a = 0.0f;
      if (xi) {
        a = to_f(xi[j]);
        if (p > 0.0f) a = philox_uniform(seed, offset + uint64_t(row * c + j)) >= p ? a * keep_scale : 0.0f;
      }
      si[j] = from_f<T>(to_f(ri[j]) + a);
    }
    __syncthreads();
    xi = si;
  }
  float s = 0.0f;
  if (layer)
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += to_f(xi[j]);
  const float m = layer ? block_sum(s, shared) / float(c) : 0.0f;
  float v = 0.0f;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const float d = to_f(xi[j]) - m;
    v += d * d;
  }
  const float r = rsqrtf(block_sum(v, shared) / float(c) + eps);
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
    yi[j] = from_f<T>((to_f(xi[j]) - m) * r * to_f(w[j]) + (b ? to_f(b[j]) : 0.0f));
  if (threadIdx.x == 0) {
    if (mean) mean[row] = m;
    rstd[row] = r;
  }
}

template <class T, class W>
__global__ void norm_backward_kernel(bool layer, T* dx, float* dw, float* db, const T* dy, const T* x, const W* w,
                                     const float* mean, const float* rstd, int64_t c) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const T* xi = x + row * c;
  const T* dyi = dy + row * c;
  T* dxi = dx + row * c;
  const float m = layer ? mean[row] : 0.0f, r = rstd[row];
  float g_sum = 0.0f, gx_sum = 0.0f;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const float g = to_f(dyi[j]) * to_f(w[j]);
    g_sum += g;
    gx_sum += g * (to_f(xi[j]) - m) * r;
  }
  const float g_mean = layer ? block_sum(g_sum, shared) / float(c) : 0.0f;
  const float gx_mean = block_sum(gx_sum, shared) / float(c);
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const float xhat = (to_f(xi[j]) - m) * r;
    const float d = to_f(dyi[j]);
    dxi[j] = from_f<T>(to_f(dxi[j]) + r * (d * to_f(w[j]) - g_mean - xhat * gx_mean));
    if (dw) atomicAdd(dw + j, d * xhat);
    if (db) atomicAdd(db + j, d);
  }
}

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
  PTUNE_FLOAT_DISPATCH(y.dtype(), T, op,
    PTUNE_FLOAT_DISPATCH(w.dtype(), W, op,
      norm_forward_kernel<T, W><<<unsigned(n), kThreads, 0, raw(stream)>>>(
          layer, mptr<T>(y), mptr<T>(sum), layer ? mptr<float>(mean) : nullptr, mptr<float>(rstd), ptr<T>(x),
          ptr<T>(residual), ptr<W>(w), ptr<W>(b), c, eps, p, p > 0.0f ? 1.0f / (1.0f - p) : 1.0f, seed, offset)));
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace

void norm_forward(NormKind kind, const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                  const Tensor& w, const Tensor& b, float eps, const Stream& stream) {
  PTUNE_CHECK(x.defined(), "norm_forward: x is undefined");
  launch_forward(kind, y, Tensor(), mean, rstd, x, Tensor(), w, b, eps, 0.0f, 0, 0, stream);
}

void residual_dropout_norm_forward(NormKind kind, const Tensor& y, const Tensor& sum, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& a, const Tensor& residual, const Tensor& w,
                                   const Tensor& b, float eps, float p, uint64_t seed, uint64_t offset,
                                   const Stream& stream) {
  PTUNE_CHECK(p >= 0.0f && p < 1.0f, "dropout probability {} must be in [0, 1)", p);
  PTUNE_CHECK(residual.defined() && sum.defined() && residual.numel() == y.numel() && sum.numel() == y.numel() &&
                  residual.dtype() == y.dtype() && sum.dtype() == y.dtype(),
              "residual_dropout_norm_forward: residual and sum must match y {}", y.shape().str());
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
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
    PTUNE_FLOAT_DISPATCH(w.dtype(), W, op,
      norm_backward_kernel<T, W><<<unsigned(n), kThreads, 0, raw(stream)>>>(
          layer, mptr<T>(dx), mptr<float>(dw), mptr<float>(db), ptr<T>(dy), ptr<T>(x), ptr<W>(w),
          layer ? ptr<float>(mean) : nullptr, ptr<float>(rstd), c)));
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
