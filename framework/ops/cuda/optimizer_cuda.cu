// AdamW over the flat f32 ParameterSet buffers (torch.optim.AdamW:
// decoupled decay p -= lr·wd·p, then the bias-corrected Adam step), and
// the sum of squares behind gradient-norm clipping.
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

#include <cmath>

namespace ptune::ops::cuda {

namespace {

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, const float* decay, int64_t n, float lr,
                             float beta1, float beta2, float eps, float wd, float bc1, float bc2_sqrt) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i];
    if (wd != 0.0f && (decay == nullptr || decay[i] != 0.0f)) p[i] *= 1.0f - lr * wd;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= (lr / bc1) * mi / (sqrtf(vi) / bc2_sqrt + eps);
  }
}

__global__ void sum_squares_kernel(float* out, const float* x, int64_t n) {
  __shared__ float shared[32];
  float s = 0.0f;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    s += x[i] * x[i];
  s = block_sum(s, shared);
  if (threadIdx.x == 0) atomicAdd(out, s);
}

}  // namespace

void adamw_step(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v, const Tensor& decay_mask,
                const AdamWArgs& a, const Stream& stream) {
  const char* op = "adamw_step";
  for (const Tensor* t : {&params, &grads, &m, &v}) {
    check_cuda_tensor(*t, "buffer", op);
    PTUNE_CHECK(t->dtype() == DType::kF32 && t->numel() == params.numel(), "{}: buffers must be f32 of {} values", op,
                params.numel());
  }
  if (decay_mask.defined())
    PTUNE_CHECK(decay_mask.numel() == params.numel() && decay_mask.dtype() == DType::kF32, "{}: decay mask {}", op,
                decay_mask.shape().str());
  PTUNE_CHECK(a.step >= 1, "{}: step {} must count from 1", op, a.step);
  const int64_t n = params.numel();
  if (n == 0) return;
  const float bc1 = 1.0f - float(std::pow(double(a.beta1), double(a.step)));
  const float bc2_sqrt = float(std::sqrt(1.0 - std::pow(double(a.beta2), double(a.step))));
  adamw_kernel<<<blocks_for(n, 256), 256, 0, raw(stream)>>>(
      static_cast<float*>(params.raw()), static_cast<const float*>(grads.raw()), static_cast<float*>(m.raw()),
      static_cast<float*>(v.raw()), decay_mask.defined() ? static_cast<const float*>(decay_mask.raw()) : nullptr, n,
      a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, bc1, bc2_sqrt);
  PTUNE_CUDA_LAUNCH_CHECK();
}

void sum_squares(const Tensor& out, const Tensor& x, const Stream& stream) {
  check_cuda_tensor(x, "x", "sum_squares");
  PTUNE_CHECK(x.dtype() == DType::kF32 && out.dtype() == DType::kF32 && out.numel() == 1,
              "sum_squares: x f32, out (1) f32");
  const int64_t n = x.numel();
  if (n == 0) return;
  const unsigned blocks = blocks_for(n, 256) < 1024 ? blocks_for(n, 256) : 1024;
  sum_squares_kernel<<<blocks, 256, 0, raw(stream)>>>(static_cast<float*>(out.raw()),
                                                      static_cast<const float*>(x.raw()), n);
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
