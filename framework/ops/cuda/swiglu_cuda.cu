// The gated MLP activation on the GPU: x (N, 2I) holds per row the gate
// then the up projection; y (N, I) = f(gate) · up. Forward writes, backward
// accumulates into dx (or, with GradMode::kWrite, writes it without reading
// it), exactly as ops/cpu/swiglu_cpu.cpp.
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

// Element k of (N, I) is column i = k mod I of row r = k div I; its gate
// sits at x[r·2I + i], its up projection I further on.
__device__ __forceinline__ int64_t gate_index(int64_t k, int64_t I) {
  const int64_t r = k / I;
  return k + r * I;
}

// Chunks of N elements of y (N = 8 bf16 / 4 f32 with 16-byte accesses when
// I is a multiple of N and every operand is 16-byte aligned, so a chunk never
// crosses a row and its gates are contiguous; else N = 1).
template <class T, int N>
__global__ void swiglu_forward_kernel(T* y, const T* x, int64_t n, int64_t I) {
  PTUNE_GRID_STRIDE(c, n / N) {
    const int64_t k = c * N, j = gate_index(k, I);
    const Vec<T, N> g = Vec<T, N>::load(x + j), u = Vec<T, N>::load(x + j + I);
    Vec<T, N> o;
#pragma unroll
    for (int e = 0; e < N; ++e) o.set(e, g[e] * sigmoid(g[e]) * u[e]);
    o.store(y + k);
  }
}

// dgate += dy · up · s(1 + g(1 − s)), dup += dy · g · s, with s = sigmoid(g);
// Write: = instead of +=, and dx is never loaded (it may hold garbage).
template <class T, int N, bool Write>
__global__ void swiglu_backward_kernel(T* dx, const T* dy, const T* x, int64_t n, int64_t I) {
  PTUNE_GRID_STRIDE(c, n / N) {
    const int64_t k = c * N, j = gate_index(k, I);
    const Vec<T, N> g = Vec<T, N>::load(x + j), u = Vec<T, N>::load(x + j + I), d = Vec<T, N>::load(dy + k);
    Vec<T, N> dg, du;
    if constexpr (!Write) {
      dg = Vec<T, N>::load(dx + j);
      du = Vec<T, N>::load(dx + j + I);
    }
#pragma unroll
    for (int e = 0; e < N; ++e) {
      const float s = sigmoid(g[e]);
      const float vu = d[e] * g[e] * s, vg = d[e] * u[e] * s * (1.0f + g[e] * (1.0f - s));
      if constexpr (Write) {
        du.set(e, vu);
        dg.set(e, vg);
      } else {
        du.set(e, du[e] + vu);
        dg.set(e, dg[e] + vg);
      }
    }
    du.store(dx + j + I);
    dg.store(dx + j);
  }
}

// Launches kernel<T, N> with the widest N the shapes and pointers allow.
template <class T, template <class, int> class Launch, class... In>
void launch_fused(int64_t n, int64_t I, const Stream& stream, T* out, const In*... in) {
  constexpr int kN = vec_width<T>();
  if (I % kN == 0 && vector_aligned(out, in...))
    Launch<T, kN>::run(blocks_for(n / kN, kThreads), raw(stream), out, in..., n, I);
  else
    Launch<T, 1>::run(blocks_for(n, kThreads), raw(stream), out, in..., n, I);
  PTUNE_CUDA_LAUNCH_CHECK();
}

template <class T, int N>
struct ForwardLaunch {
  static void run(unsigned blocks, cudaStream_t s, T* y, const T* x, int64_t n, int64_t I) {
    swiglu_forward_kernel<T, N><<<blocks, kThreads, 0, s>>>(y, x, n, I);
  }
};
template <bool Write>
struct BackwardLaunch {
  template <class T, int N>
  struct Of {
    static void run(unsigned blocks, cudaStream_t s, T* dx, const T* dy, const T* x, int64_t n, int64_t I) {
      swiglu_backward_kernel<T, N, Write><<<blocks, kThreads, 0, s>>>(dx, dy, x, n, I);
    }
  };
};

// --- The composed path for any other activation; scratch is f32 (N, I).

// gate (N, I) f32 ← the gate columns of x.
template <class T>
__global__ void gather_gate_kernel(float* gate, const T* x, int64_t n, int64_t I) {
  PTUNE_GRID_STRIDE(k, n) gate[k] = to_f(x[gate_index(k, I)]);
}

// y = act · up.
template <class T>
__global__ void gated_product_kernel(T* y, const float* act, const T* x, int64_t n, int64_t I) {
  PTUNE_GRID_STRIDE(k, n) y[k] = from_f<T>(act[k] * to_f(x[gate_index(k, I) + I]));
}

// dup += dy · act (= when write); dy_up ← dy · up (the upstream gradient of
// f(gate)); act ← 0, so activation_backward can accumulate f'(gate) · dy_up into it.
template <class T>
__global__ void gated_split_kernel(T* dx, float* dy_up, float* act, const T* dy, const T* x, int64_t n, int64_t I,
                                   bool write) {
  PTUNE_GRID_STRIDE(k, n) {
    const int64_t j = gate_index(k, I) + I;
    const float d = to_f(dy[k]);
    dx[j] = from_f<T>(write ? d * act[k] : to_f(dx[j]) + d * act[k]);
    dy_up[k] = d * to_f(x[j]);
    act[k] = 0.0f;
  }
}

// dgate += dg (N, I) f32 (= when write).
template <class T>
__global__ void scatter_gate_kernel(T* dx, const float* dg, int64_t n, int64_t I, bool write) {
  PTUNE_GRID_STRIDE(k, n) {
    const int64_t j = gate_index(k, I);
    dx[j] = from_f<T>(write ? dg[k] : to_f(dx[j]) + dg[k]);
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
                         launch_fused<T, ForwardLaunch>(n, I, stream, static_cast<T*>(y.raw()),
                                                        static_cast<const T*>(x.raw())));
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

void gated_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x, GradMode mode,
                    const Stream& stream) {
  const char* op = "gated_backward";
  const int64_t I = check(x, dy, op), n = dy.numel();
  check_cuda_tensor(dx, "dx", op);
  PTUNE_CHECK(dx.numel() == x.numel() && dx.dtype() == x.dtype() && dx.device() == x.device(),
              "{}: dx {} {} for x {} {}", op, dx.shape().str(), dtype_name(dx.dtype()), x.shape().str(),
              dtype_name(x.dtype()));
  if (n == 0) return;
  const unsigned blocks = blocks_for(n, kThreads);
  const bool write = mode == GradMode::kWrite;
  if (f == Activation::kSilu) {
    PTUNE_FLOAT_DISPATCH(x.dtype(), T, op, {
      T* pdx = static_cast<T*>(dx.raw());
      const T* pdy = static_cast<const T*>(dy.raw());
      const T* px = static_cast<const T*>(x.raw());
      if (write)
        launch_fused<T, BackwardLaunch<true>::Of>(n, I, stream, pdx, pdy, px);
      else
        launch_fused<T, BackwardLaunch<false>::Of>(n, I, stream, pdx, pdy, px);
    });
    return;
  }
  // gate, act = f(gate); dup += dy·act; dgate += f'(gate)·(dy·up) (= when write).
  Scratch gate(x.device(), {n}, DType::kF32), act(x.device(), {n}, DType::kF32), dy_up(x.device(), {n}, DType::kF32);
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                       gather_gate_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                           gate.data<float>(), static_cast<const T*>(x.raw()), n, I));
  PTUNE_CUDA_LAUNCH_CHECK();
  activation_forward(f, act.tensor(), gate.tensor(), stream);
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                       gated_split_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                           static_cast<T*>(dx.raw()), dy_up.data<float>(), act.data<float>(),
                           static_cast<const T*>(dy.raw()), static_cast<const T*>(x.raw()), n, I, write));
  PTUNE_CUDA_LAUNCH_CHECK();
  activation_backward(f, act.tensor(), dy_up.tensor(), gate.tensor(), stream);  // act now holds ∂L/∂gate
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
                       scatter_gate_kernel<T><<<blocks, kThreads, 0, raw(stream)>>>(
                           static_cast<T*>(dx.raw()), act.data<float>(), n, I, write));
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
