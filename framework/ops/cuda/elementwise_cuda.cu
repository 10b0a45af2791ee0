// Elementwise arithmetic, dropout and activations on the GPU, f32 math on
// f32 or bf16 storage. Forward writes, backward accumulates. Dropout redraws
// its mask from Philox (seed, offset + i) in both directions, the same
// numbers as the CPU (core/rng.cpp).
//
// Every op but copy_columns is one map_kernel: element i of out becomes
// op(u_i, out_i, in_i...). Threads step through chunks of N elements moved
// with 16-byte accesses (Vec, N = 8 when any operand is bf16, else 4); the
// n mod N last elements, or all of them when an operand is not 16-byte
// aligned (a view at an odd offset), take the N = 1 path, same math.
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/activation.cuh"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

constexpr int kThreads = 256;

// Elements [base, base + N): loads, applies op, stores. u is the element's
// Philox uniform for ops that draw (kDraws), drawn once per 4 elements.
template <int N, class Op, class D, class... S>
__device__ __forceinline__ void map_chunk(const Op& op, D* out, int64_t base, const Vec<S, N>&... in) {
  float u[N] = {};
  if constexpr (Op::kDraws) philox_uniforms<N>(op.seed, op.offset + uint64_t(base), u);
  Vec<D, N> o;
  if constexpr (Op::kReadsOut) o = Vec<D, N>::load(out + base);
#pragma unroll
  for (int k = 0; k < N; ++k) o.set(k, op(u[k], Op::kReadsOut ? o[k] : 0.0f, in[k]...));
  o.store(out + base);
}

// out, in... (n). N = 1 is the scalar kernel for unaligned operands.
template <int N, class Op, class D, class... S>
__global__ void map_kernel(Op op, D* out, int64_t n, const S*... in) {
  const int64_t chunks = n / N, tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x,
                stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t c = tid; c < chunks; c += stride) map_chunk<N>(op, out, c * N, Vec<S, N>::load(in + c * N)...);
  if constexpr (N > 1) {
    const int64_t i = chunks * N + tid;  // the tail: fewer than N elements
    if (i < n) map_chunk<1>(op, out, i, Vec<S, 1>::load(in + i)...);
  }
}

template <class Op, class D, class... S>
void launch_map(const Op& op, D* out, int64_t n, const Stream& stream, const S*... in) {
  if (n == 0) return;
  constexpr int kN = vec_width<D, S...>();
  if (vector_aligned(out, in...))
    map_kernel<kN><<<blocks_for((n + kN - 1) / kN, kThreads), kThreads, 0, raw(stream)>>>(op, out, n, in...);
  else
    map_kernel<1><<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(op, out, n, in...);
  PTUNE_CUDA_LAUNCH_CHECK();
}

// The ops: operator()(u, out_i, in_i...) → the new out_i, all in f32.
struct AddOp {
  static constexpr bool kReadsOut = false, kDraws = false;
  __device__ float operator()(float, float, float a, float b) const { return a + b; }
};

struct AccumulateOp {
  static constexpr bool kReadsOut = true, kDraws = false;
  __device__ float operator()(float, float dst, float src) const { return dst + src; }
};

struct ScaleOp {
  static constexpr bool kReadsOut = true, kDraws = false;
  float s;
  __device__ float operator()(float, float t) const { return t * s; }
};

struct DropoutForwardOp {
  static constexpr bool kReadsOut = false, kDraws = true;
  float p, keep_scale;
  uint64_t seed, offset;
  __device__ float operator()(float u, float, float x) const { return u >= p ? x * keep_scale : 0.0f; }
};

// A dropped element keeps its dx (stored back unchanged).
struct DropoutBackwardOp {
  static constexpr bool kReadsOut = true, kDraws = true;
  float p, keep_scale;
  uint64_t seed, offset;
  __device__ float operator()(float u, float dx, float dy) const { return u >= p ? dx + dy * keep_scale : dx; }
};

struct ActivationForwardOp {
  static constexpr bool kReadsOut = false, kDraws = false;
  Activation f;
  __device__ float operator()(float, float, float x) const { return act_forward(f, x); }
};

struct ActivationBackwardOp {
  static constexpr bool kReadsOut = true, kDraws = false;
  Activation f;
  __device__ float operator()(float, float dx, float dy, float x) const { return dx + dy * act_derivative(f, x); }
};

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
T* mptr(const Tensor& t) { return static_cast<T*>(t.raw()); }
template <class T>
const T* ptr(const Tensor& t) { return static_cast<const T*>(t.raw()); }

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
  PTUNE_FLOAT_DISPATCH(y.dtype(), T, "add_forward",
                       launch_map(AddOp{}, mptr<T>(y), y.numel(), stream, ptr<T>(a), ptr<T>(b)));
}

void accumulate(const Tensor& dst, const Tensor& src, const Stream& stream) {
  check_cuda_tensor(dst, "dst", "accumulate");
  check_cuda_tensor(src, "src", "accumulate");
  PTUNE_CHECK(dst.numel() == src.numel(), "accumulate: {} += {}", dst.shape().str(), src.shape().str());
  // A bf16 gradient may be accumulated into an f32 master gradient.
  PTUNE_FLOAT_DISPATCH(dst.dtype(), T, "accumulate",
    PTUNE_FLOAT_DISPATCH(src.dtype(), S, "accumulate",
      launch_map(AccumulateOp{}, mptr<T>(dst), dst.numel(), stream, ptr<S>(src))));
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
          mptr<D>(dst) + dst_col, dst.size(1), ptr<S>(src) + src_col, src.size(1), width, n, accumulate)));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void scale_(const Tensor& t, float s, const Stream& stream) {
  check_cuda_tensor(t, "t", "scale_");
  PTUNE_FLOAT_DISPATCH(t.dtype(), T, "scale_", launch_map(ScaleOp{s}, mptr<T>(t), t.numel(), stream));
}

void dropout_forward(const Tensor& y, const Tensor& x, float p, uint64_t seed, uint64_t offset, const Stream& stream) {
  PTUNE_CHECK(p >= 0.0f && p < 1.0f, "dropout probability {} must be in [0, 1)", p);
  check_same(y, x, "dropout_forward");
  const DropoutForwardOp op{p, 1.0f / (1.0f - p), seed, offset};
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, "dropout_forward", launch_map(op, mptr<T>(y), x.numel(), stream, ptr<T>(x)));
}

void dropout_backward(const Tensor& dx, const Tensor& dy, float p, uint64_t seed, uint64_t offset,
                      const Stream& stream) {
  PTUNE_CHECK(p >= 0.0f && p < 1.0f, "dropout probability {} must be in [0, 1)", p);
  check_same(dx, dy, "dropout_backward");
  const DropoutBackwardOp op{p, 1.0f / (1.0f - p), seed, offset};
  PTUNE_FLOAT_DISPATCH(dy.dtype(), T, "dropout_backward",
                       launch_map(op, mptr<T>(dx), dy.numel(), stream, ptr<T>(dy)));
}

void activation_forward(Activation f, const Tensor& y, const Tensor& x, const Stream& stream) {
  check_same(y, x, "activation_forward");
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, "activation_forward",
                       launch_map(ActivationForwardOp{f}, mptr<T>(y), x.numel(), stream, ptr<T>(x)));
}

void activation_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x, const Stream& stream) {
  check_same(dx, x, "activation_backward");
  check_same(dy, x, "activation_backward");
  PTUNE_FLOAT_DISPATCH(x.dtype(), T, "activation_backward",
                       launch_map(ActivationBackwardOp{f}, mptr<T>(dx), x.numel(), stream, ptr<T>(dy), ptr<T>(x)));
}

}  // namespace ptune::ops::cuda
