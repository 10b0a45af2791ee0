// ops/optimizer.h on the GPU: the AdamW element update over the flat f32
// ParameterSet buffers, and the two reductions behind gradient clipping
// and the finite check (each copies one value back: one sync of `stream`).
//
// The update spells every rounding with the _rn intrinsics: nvcc contracts
// a·b + c into an FMA by default (-fmad=true), which would round once where
// the CPU reference (ops/cpu/optimizer_cpu.cpp, fp-contract=off) rounds
// twice. With the same two explicit FMAs and IEEE division and square root
// the GPU step is the CPU step to the bit.
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

constexpr int kThreads = 256;
// Blocks of the sum of squares: the grid, and so the summation order,
// depends on the element count only.
constexpr unsigned kMaxSumBlocks = 1024;

void check_flat_f32(const Tensor& t, int64_t n, Device device, const char* what, const char* op) {
  PTUNE_CHECK(t.defined() && t.dtype() == DType::kF32 && t.numel() == n, "{}: {} must be f32 of {} values, got {} {}",
              op, what, n, dtype_name(t.dtype()), t.shape().str());
  PTUNE_CHECK(t.device() == device, "{}: {} lives on {}, the parameters on {}", op, what, t.device().str(),
              device.str());
}

// (n) buffers; decay == nullptr decays every element.
__global__ void adamw_update_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                    float* __restrict__ v, const float* __restrict__ decay, int64_t n,
                                    AdamWScalars sc) {
  // torch's lerp: weight < 0.5 ? self + w·(end − self) : end + (w − 1)·(end − self).
  const bool lerp_small = sc.w1 < 0.5f;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i], m0 = m[i];
    const float diff = __fsub_rn(gi, m0);
    const float mi = lerp_small ? __fmaf_rn(sc.w1, diff, m0) : __fmaf_rn(__fsub_rn(sc.w1, 1.0f), diff, gi);
    const float vi = __fmaf_rn(__fmul_rn(sc.w2, gi), gi, __fmul_rn(v[i], sc.b2));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), sc.bc2_sqrt), sc.eps);
    m[i] = mi;
    v[i] = vi;
    const float scale = decay == nullptr || decay[i] != 0.0f ? sc.decay_scale : 1.0f;
    p[i] = __fadd_rn(__fmul_rn(p[i], scale), __fdiv_rn(__fmul_rn(sc.neg_step_size, mi), denom));
  }
}

__device__ __forceinline__ double warp_sum_double(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, ≤ 1024), in a fixed
// order; thread 0 gets the result. `shared` holds 32 doubles.
__device__ __forceinline__ double block_sum_double(double v, double* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum_double(v);
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < int(blockDim.x >> 5) ? shared[lane] : 0.0;
  return warp == 0 ? warp_sum_double(v) : 0.0;
}

// partial[block] = Σ x² over the block's grid-stride elements, in double.
__global__ void sum_squares_partial_kernel(double* __restrict__ partial, const float* __restrict__ x, int64_t n) {
  __shared__ double shared[32];
  double s = 0.0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    s += double(x[i]) * double(x[i]);
  s = block_sum_double(s, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// One block of kMaxSumBlocks threads: *out = Σ partial[0, count).
__global__ void sum_partials_kernel(double* __restrict__ out, const double* __restrict__ partial, unsigned count) {
  __shared__ double shared[32];
  double s = threadIdx.x < count ? partial[threadIdx.x] : 0.0;
  s = block_sum_double(s, shared);
  if (threadIdx.x == 0) *out = s;
}

// *flag = 1 when some element is NaN or ±Inf (flag zeroed before).
__global__ void non_finite_kernel(int32_t* __restrict__ flag, const float* __restrict__ x, int64_t n) {
  bool bad = false;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    bad = bad || !isfinite(x[i]);
  if (__syncthreads_or(bad) && threadIdx.x == 0) *flag = 1;
}

void check_reduction_input(const Tensor& x, const char* op) {
  check_cuda_tensor(x, "x", op);
  PTUNE_CHECK(x.dtype() == DType::kF32, "{}: x must be f32, got {}", op, dtype_name(x.dtype()));
}

}  // namespace

void adamw_update(const Tensor& params, const Tensor& grads, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const Tensor& decay_mask, const AdamWScalars& scalars, const Stream& stream) {
  const char* op = "adamw_update";
  check_cuda_tensor(params, "params", op);
  const int64_t n = params.numel();
  const Device device = params.device();
  check_flat_f32(params, n, device, "params", op);
  check_flat_f32(grads, n, device, "grads", op);
  check_flat_f32(exp_avg, n, device, "exp_avg", op);
  check_flat_f32(exp_avg_sq, n, device, "exp_avg_sq", op);
  if (decay_mask.defined()) check_flat_f32(decay_mask, n, device, "decay_mask", op);
  if (n == 0) return;
  adamw_update_kernel<<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
      params.data<float>(), grads.data<float>(), exp_avg.data<float>(), exp_avg_sq.data<float>(),
      decay_mask.defined() ? decay_mask.data<float>() : nullptr, n, scalars);
  PTUNE_CUDA_LAUNCH_CHECK();
}

double sum_squares(const Tensor& x, const Stream& stream) {
  check_reduction_input(x, "sum_squares");
  const int64_t n = x.numel();
  if (n == 0) return 0.0;
  const unsigned blocks = blocks_for(n, kThreads) < kMaxSumBlocks ? blocks_for(n, kThreads) : kMaxSumBlocks;
  // Tensors have no f64 dtype: i64 gives the 8-byte slots, read as doubles.
  // [0, blocks) the partials, [blocks] the total.
  Scratch scratch(x.device(), {int64_t(blocks) + 1}, DType::kI64);
  double* partial = static_cast<double*>(scratch.tensor().raw());
  sum_squares_partial_kernel<<<blocks, kThreads, 0, raw(stream)>>>(partial, x.data<float>(), n);
  PTUNE_CUDA_LAUNCH_CHECK();
  sum_partials_kernel<<<1, kMaxSumBlocks, 0, raw(stream)>>>(partial + blocks, partial, blocks);
  PTUNE_CUDA_LAUNCH_CHECK();
  double total = 0.0;
  PTUNE_CUDA_CHECK(cudaMemcpyAsync(&total, partial + blocks, sizeof(total), cudaMemcpyDeviceToHost, raw(stream)));
  PTUNE_CUDA_CHECK(cudaStreamSynchronize(raw(stream)));
  return total;
}

bool all_finite(const Tensor& x, const Stream& stream) {
  check_reduction_input(x, "all_finite");
  const int64_t n = x.numel();
  if (n == 0) return true;
  Scratch flag(x.device(), {1}, DType::kI32);
  PTUNE_CUDA_CHECK(cudaMemsetAsync(flag.data<int32_t>(), 0, sizeof(int32_t), raw(stream)));
  non_finite_kernel<<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(flag.data<int32_t>(), x.data<float>(),
                                                                          n);
  PTUNE_CUDA_LAUNCH_CHECK();
  int32_t bad = 0;
  PTUNE_CUDA_CHECK(cudaMemcpyAsync(&bad, flag.data<int32_t>(), sizeof(bad), cudaMemcpyDeviceToHost, raw(stream)));
  PTUNE_CUDA_CHECK(cudaStreamSynchronize(raw(stream)));
  return bad == 0;
}

}  // namespace ptune::ops::cuda
