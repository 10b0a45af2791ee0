// Elementwise arithmetic, dropout and activations on the GPU: grid-stride
// loops, f32 math on f32 or bf16 storage. Forward writes, backward
// accumulates. Dropout redraws its mask from Philox (seed, offset + i) in
// both directions, the same numbers as the CPU (core/rng.cpp).
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

constexpr int kThreads = 256;

#define GRID_STRIDE(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <class T>
__global__ void add_kernel(T* y, const T* a, const T* b, int64_t n) {
  GRID_STRIDE(i, n) y[i] = from_f<T>(to_f(a[i]) + to_f(b[i]));
}

template <class T, class S>
__global__ void accumulate_kernel(T* dst, const S* src, int64_t n) {
  GRID_STRIDE(i, n) dst[i] = from_f<T>(to_f(dst[i]) + to_f(src[i]));
}

// One thread per (row, column) of the block; grid-stride over N·width.
template <class D, class S>
__global__ void copy_columns_kernel(D* dst, int64_t dst_stride, const S* src, int64_t src_stride, int64_t width,
                                    int64_t n, bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / width, j = i % width;
    D* d = dst + r * dst_stride + j;
    const float v = to_f(src[r * src_stride + j]);
    *d = from_f<D>(accumulate ? to_f(*d) + v : v);
  }
}

template <class T>
__global__ void scale_kernel(T* t, float s, int64_t n) {
  GRID_STRIDE(i, n) t[i] = from_f<T>(to_f(t[i]) * s);
}

template <class T>
__global__ void dropout_forward_kernel(T* y, const T* x, float p, float keep_scale, uint64_t seed, uint64_t offset,
                                       int64_t n) {
  GRID_STRIDE(i, n) {
    const bool keep = philox_uniform(seed, offset + uint64_t(i)) >= p;
    y[i] = from_f<T>(keep ? to_f(x[i]) * keep_scale : 0.0f);
  }
}

template <class T>
__global__ void dropout_backward_kernel(T* dx, const T* dy, float p, float keep_scale, uint64_t seed,
                                        uint64_t offset, int64_t n) {
  GRID_STRIDE(i, n) {
    if (philox_uniform(seed, offset + uint64_t(i)) >= p) dx[i] = from_f<T>(to_f(dx[i]) + to_f(dy[i]) * keep_scale);
  }
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

__device__ __forceinline__ float act_forward(Activation f, float x) {
  switch (f) {
    case Activation::kGeluTanh: return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    case Activation::kGeluErf: return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
    case Activation::kTanh: return tanhf(x);
    case Activation::kSilu: return x / (1.0f + expf(-x));
  }
  return 0.0f;
}

__device__ __forceinline__ float act_derivative(Activation f, float x) {
  switch (f) {
    case Activation::kGeluTanh: {
      const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
      const float t = tanhf(u);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
    case Activation::kGeluErf: return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
    case Activation::kRelu: return x > 0.0f ? 1.0f : 0.0f;
    case Activation::kTanh: {
      const float t = tanhf(x);
      return 1.0f - t * t;
    }
    case Activation::kSilu: {
      const float s = 1.0f / (1.0f + expf(-x));
      return s * (1.0f + x * (1.0f - s));
    }
  }
  return 0.0f;
}

template <class T>
__global__ void activation_forward_kernel(Activation f, T* y, const T* x, int64_t n) {
  GRID_STRIDE(i, n) y[i] = from_f<T>(act_forward(f, to_f(x[i])));
}

template <class T>
__global__ void activation_backward_kernel(Activation f, T* dx, const T* dy, const T* x, int64_t n) {
  GRID_STRIDE(i, n) dx[i] = from_f<T>(to_f(dx[i]) + to_f(dy[i]) * act_derivative(f, to_f(x[i])));
}

void check_same(const Tensor& a, const Tensor& b, const char* op) {
  check_cuda_tensor(a, "first operand", op);
  check_cuda_tensor(b, "second operand", op);
  PTUNE_CHECK(a.numel() == b.numel() && a.dtype() == b.dtype(), "{}: {} {} vs {} {}", op, a.shape().str(),
              dtype_name(a.dtype()), b.shape().str(), dtype_name(b.dtype()));
}

}  // namespace

void add_forward(const Tensor& y, const Tensor& a, const Tensor& b, const Stream& stream) {
  check_same(y, a, "add_forward");
  check_same(a, b, "add_forward");
  const int64_t n = y.numel();
  PTUNE_FLOAT_DISPATCH(y.dtype(), T, "add_forward",
                       add_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
                           static_cast<T*>(y.raw()), static_cast<const T*>(a.raw()), static_cast<const T*>(b.raw()), n));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void accumulate(const Tensor& dst, const Tensor& src, const Stream& stream) {
  check_cuda_tensor(dst, "dst", "accumulate");
  check_cuda_tensor(src, "src", "accumulate");
  PTUNE_CHECK(dst.numel() == src.numel(), "accumulate: {} += {}", dst.shape().str(), src.shape().str());
  const int64_t n = dst.numel();
  // A bf16 gradient may be accumulated into an f32 master gradient.
  PTUNE_FLOAT_DISPATCH(dst.dtype(), T, "accumulate",
    PTUNE_FLOAT_DISPATCH(src.dtype(), S, "accumulate",
      accumulate_kernel<T, S><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
          static_cast<T*>(dst.raw()), static_cast<const S*>(src.raw()), n)));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void copy_columns(const Tensor& dst, int64_t dst_col, const Tensor& src, int64_t src_col, int64_t width,
                  bool accumulate, const Stream& stream) {
  // Shapes were checked by the public op.
  check_cuda_tensor(dst, "dst", "copy_columns");
  check_cuda_tensor(src, "src", "copy_columns");
  const int64_t n = dst.size(0) * width;
  if (n == 0) return;
  PTUNE_FLOAT_DISPATCH(dst.dtype(), D, "copy_columns",
    PTUNE_FLOAT_DISPATCH(src.dtype(), S, "copy_columns",
      copy_columns_kernel<D, S><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
          static_cast<D*>(dst.raw()) + dst_col, dst.size(1), static_cast<const S*>(src.raw()) + src_col, src.size(1),
          width, n, accumulate)));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void scale_(const Tensor& t, float s, const Stream& stream) {
  check_cuda_tensor(t, "t", "scale_");
  const int64_t n = t.numel();
  PTUNE_FLOAT_DISPATCH(t.dtype(), T, "scale_",
                       scale_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(static_cast<T*>(t.raw()),
                                                                                              s, n));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void dropout_forward(const Tensor& y, const Tensor& x, float p, uint64_t seed, uint64_t offset, const Stream& stream) {
  PTUNE_CHECK(p >= 0.0f && p < 1.0f, "dropout probability {} must be in [0, 1)", p);
  check_same(y, x, "dropout_forward");
  const int64_t n = x.numel();
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, "dropout_forward",
                       dropout_forward_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
                           static_cast<T*>(y.raw()), static_cast<const T*>(x.raw()), p, 1.0f / (1.0f - p), seed,
                           offset, n));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void dropout_backward(const Tensor& dx, const Tensor& dy, float p, uint64_t seed, uint64_t offset,
                      const Stream& stream) {
  PTUNE_CHECK(p >= 0.0f && p < 1.0f, "dropout probability {} must be in [0, 1)", p);
  check_same(dx, dy, "dropout_backward");
  const int64_t n = dy.numel();
  PTUNE_FLOAT_DISPATCH(dy.dtype(), T, "dropout_backward",
                       dropout_backward_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
                           static_cast<T*>(dx.raw()), static_cast<const T*>(dy.raw()), p, 1.0f / (1.0f - p), seed,
                           offset, n));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void activation_forward(Activation f, const Tensor& y, const Tensor& x, const Stream& stream) {
  check_same(y, x, "activation_forward");
  const int64_t n = x.numel();
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, "activation_forward",
                       activation_forward_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
                           f, static_cast<T*>(y.raw()), static_cast<const T*>(x.raw()), n));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void activation_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x, const Stream& stream) {
  check_same(dx, x, "activation_backward");
  check_same(dy, x, "activation_backward");
  const int64_t n = x.numel();
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, "activation_backward",
                       activation_backward_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
                           f, static_cast<T*>(dx.raw()), static_cast<const T*>(dy.raw()),
                           static_cast<const T*>(x.raw()), n));
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
