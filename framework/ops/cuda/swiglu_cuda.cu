// The gated MLP activation on the GPU: x (N, 2I) holds per row the gate
// then the up projection; y (N, I) = f(gate) · up. Forward writes, backward
// accumulates into dx (or, with GradMode::kWrite, writes it without reading
// it), exactly as ops/cpu/swiglu_cpu.cpp.
//
// One fused elementwise kernel per direction for every activation (SiLU:
// LLaMA, Mistral, Qwen; GELU-tanh: Gemma's GeGLU), instantiated per
// activation so the formula (activation.cuh) is inlined without a switch.
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/activation.cuh"
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
template <class T, int N, Activation F>
__global__ void gated_forward_kernel(T* y, const T* x, int64_t n, int64_t I) {
  PTUNE_GRID_STRIDE(c, n / N) {
    const int64_t k = c * N, j = gate_index(k, I);
    const Vec<T, N> g = Vec<T, N>::load(x + j), u = Vec<T, N>::load(x + j + I);
    Vec<T, N> o;
#pragma unroll
    for (int e = 0; e < N; ++e) o.set(e, act_forward(F, g[e]) * u[e]);
    o.store(y + k);
  }
}

// dgate += dy · up · f'(g), dup += dy · f(g); Write: = instead of +=, and
// dx is never loaded (it may hold garbage).
template <class T, int N, Activation F, bool Write>
__global__ void gated_backward_kernel(T* dx, const T* dy, const T* x, int64_t n, int64_t I) {
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
      const ActValue a = act_value_and_derivative(F, g[e]);
      const float vu = d[e] * a.value, vg = d[e] * u[e] * a.derivative;
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

template <Activation F>
struct ForwardLaunch {
  template <class T, int N>
  struct Of {
    static void run(unsigned blocks, cudaStream_t s, T* y, const T* x, int64_t n, int64_t I) {
      gated_forward_kernel<T, N, F><<<blocks, kThreads, 0, s>>>(y, x, n, I);
    }
  };
};
template <Activation F, bool Write>
struct BackwardLaunch {
  template <class T, int N>
  struct Of {
    static void run(unsigned blocks, cudaStream_t s, T* dx, const T* dy, const T* x, int64_t n, int64_t I) {
      gated_backward_kernel<T, N, F, Write><<<blocks, kThreads, 0, s>>>(dx, dy, x, n, I);
    }
  };
};

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
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op,
    PTUNE_ACTIVATION_DISPATCH(f, F,
      launch_fused<T, ForwardLaunch<F>::template Of>(n, I, stream, static_cast<T*>(y.raw()),
                                                     static_cast<const T*>(x.raw()))));
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
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, op, {
    T* pdx = static_cast<T*>(dx.raw());
    const T* pdy = static_cast<const T*>(dy.raw());
    const T* px = static_cast<const T*>(x.raw());
    PTUNE_ACTIVATION_DISPATCH(f, F, {
      if (mode == GradMode::kWrite)
        launch_fused<T, BackwardLaunch<F, true>::template Of>(n, I, stream, pdx, pdy, px);
      else
        launch_fused<T, BackwardLaunch<F, false>::template Of>(n, I, stream, pdx, pdy, px);
    });
  });
}

}  // namespace ptune::ops::cuda
