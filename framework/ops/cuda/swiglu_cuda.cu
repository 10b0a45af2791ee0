// The gated MLP activation on the GPU: x (N, 2I) holds per row the gate
// then the up projection; y (N, I) = f(gate) · up. Forward writes, backward
// accumulates into dx, exactly as ops/cpu/swiglu_cpu.cpp.
//
// SiLU (LLaMA, Mistral, Qwen) is one fused elementwise kernel per
// direction. Other gates (GeGLU) are composed from the activation
// launchers of elementwise_cuda.cu on f32 scratch, so the activation
// formulas exist once on the device; that path costs a few extra passes.
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

constexpr int kThreads = 256;

#define GRID_STRIDE(k, n) \
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < (n); k += int64_t(gridDim.x) * blockDim.x)

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

// Element k of (N, I) is column i = k mod I of row r = k div I; its gate
// sits at x[r·2I + i], its up projection I further on.
__device__ __forceinline__ int64_t gate_index(int64_t k, int64_t I) {
  const int64_t r = k / I;
  return k + r * I;
}

template <class T>
__global__ void swiglu_forward_kernel(T* y, const T* x, int64_t n, int64_t I) {
  GRID_STRIDE(k, n) {
    const int64_t j = gate_index(k, I);
    const float g = to_f(x[j]), u = to_f(x[j + I]);
    y[k] = from_f<T>(g * sigmoid(g) * u);
  }
}

// dgate += dy · up · s(1 + g(1 − s)), dup += dy · g · s, with s = sigmoid(g).
template <class T>
__global__ void swiglu_backward_kernel(T* dx, const T* dy, const T* x, int64_t n, int64_t I) {
  GRID_STRIDE(k, n) {
    const int64_t j = gate_index(k, I);
    const float g = to_f(x[j]), u = to_f(x[j + I]), d = to_f(dy[k]);
    const float s = sigmoid(g);
    dx[j + I] = from_f<T>(to_f(dx[j + I]) + d * g * s);
    dx[j] = from_f<T>(to_f(dx[j]) + d * u * s * (1.0f + g * (1.0f - s)));
  }
}

// --- The composed path for any other activation; scratch is f32 (N, I).

// gate (N, I) f32 ← the gate columns of x.
template <class T>
__global__ void gather_gate_kernel(float* gate, const T* x, int64_t n, int64_t I) {
  GRID_STRIDE(k, n) gate[k] = to_f(x[gate_index(k, I)]);
}

// y = act · up.
template <class T>
__global__ void gated_product_kernel(T* y, const float* act, const T* x, int64_t n, int64_t I) {
  GRID_STRIDE(k, n) y[k] = from_f<T>(act[k] * to_f(x[gate_index(k, I) + I]));
}

// dup += dy · act; dy_up ← dy · up (the upstream gradient of f(gate));
// act ← 0, so activation_backward can accumulate f'(gate) · dy_up into it.
template <class T>
__global__ void gated_split_kernel(T* dx, float* dy_up, float* act, const T* dy, const T* x, int64_t n, int64_t I) {
  GRID_STRIDE(k, n) {
    const int64_t j = gate_index(k, I) + I;
    const float d = to_f(dy[k]);
    dx[j] = from_f<T>(to_f(dx[j]) + d * act[k]);
    dy_up[k] = d * to_f(x[j]);
    act[k] = 0.0f;
  }
}

// dgate += dg (N, I) f32.
template <class T>
__global__ void scatter_gate_kernel(T* dx, const float* dg, int64_t n, int64_t I) {
  GRID_STRIDE(k, n) {
    const int64_t j = gate_index(k, I);
    dx[j] = from_f<T>(to_f(dx[j]) + dg[k]);
  }
}

// Returns I, the width of y / dy, after the CPU op's shape checks.
int64_t check(const Tensor& x, const Tensor& y, const char* op) {
  check_cuda_tensor(x, "x", op);
  check_cuda_tensor(y, "y", op);
  PTUNE_CHECK(x.dim() >= 1 && y.dim() >= 1 && x.size(-1) == 2 * y.size(-1) && x.numel() == 2 * y.numel(),
              "{}: x {} must be (N, 2I) for y {} (N, I)", op, x.shape().str(), y.shape().str());
  PTUNE_CHECK(x.dtype() == y.dtype() && x.device() == y.device(), "{}: x {} on {} but y {} on {}", op,
              dtype_name(x.dtype()), x.device().str(), dtype_name(y.dtype()), y.device().str());
  return y.size(-1);
}

}  // namespace

void gated_forward(Activation f, const Tensor& y, const Tensor& x, const Stream& stream) {
  const char* op = "gated_forward";
  const int64_t I = check(x, y, op), n = y.numel();
  if (n == 0) return;
  const unsigned blocks = blocks_for(n, kThreads);
  if (f == Activation::kSilu) {
    PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                         swiglu_forward_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                             static_cast<T*>(y.raw()), static_cast<const T*>(x.raw()), n, I));
    PTUNE_CUDA_LAUNCH_CHECK();
    return;
  }
  Scratch act(x.device(), {n}, DType::kF32);
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                       gather_gate_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                           act.data<float>(), static_cast<const T*>(x.raw()), n, I));
  PTUNE_CUDA_LAUNCH_CHECK();
  activation_forward(f, act.tensor(), act.tensor(), stream);  // in place: each element reads then writes itself
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                       gated_product_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                           static_cast<T*>(y.raw()), act.data<float>(), static_cast<const T*>(x.raw()), n, I));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void gated_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x, const Stream& stream) {
  const char* op = "gated_backward";
  const int64_t I = check(x, dy, op), n = dy.numel();
  check_cuda_tensor(dx, "dx", op);
  PTUNE_CHECK(dx.numel() == x.numel() && dx.dtype() == x.dtype() && dx.device() == x.device(),
              "{}: dx {} {} for x {} {}", op, dx.shape().str(), dtype_name(dx.dtype()), x.shape().str(),
              dtype_name(x.dtype()));
  if (n == 0) return;
  const unsigned blocks = blocks_for(n, kThreads);
  if (f == Activation::kSilu) {
    PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                         swiglu_backward_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                             static_cast<T*>(dx.raw()), static_cast<const T*>(dy.raw()),
                             static_cast<const T*>(x.raw()), n, I));
    PTUNE_CUDA_LAUNCH_CHECK();
    return;
  }
  // gate, act = f(gate); dup += dy·act; dgate += f'(gate)·(dy·up).
  Scratch gate(x.device(), {n}, DType::kF32), act(x.device(), {n}, DType::kF32), dy_up(x.device(), {n}, DType::kF32);
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                       gather_gate_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                           gate.data<float>(), static_cast<const T*>(x.raw()), n, I));
  PTUNE_CUDA_LAUNCH_CHECK();
  activation_forward(f, act.tensor(), gate.tensor(), stream);
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                       gated_split_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                           static_cast<T*>(dx.raw()), dy_up.data<float>(), act.data<float>(),
                           static_cast<const T*>(dy.raw()), static_cast<const T*>(x.raw()), n, I));
  PTUNE_CUDA_LAUNCH_CHECK();
  activation_backward(f, act.tensor(), dy_up.tensor(), gate.tensor(), stream);  // act now holds ∂L/∂gate
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                       scatter_gate_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                           static_cast<T*>(dx.raw()), act.data<float>(), n, I));
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
