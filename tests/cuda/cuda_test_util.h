// Helpers the CUDA tests share: inputs drawn on the CPU, copied to the GPU
// in the dtype under test, results compared with the CPU reference by the
// relative error ‖a − b‖ / ‖b‖.
//
// Tolerances: f32 ≤ 1e-5 relative (reduction-order rounding only). bf16
// inputs are rounded to bf16 on both sides; the GPU also stores outputs and
// intermediates in bf16 — 8 mantissa bits, a relative step of 2⁻⁸ ≈ 3.9e-3
// per rounding — so a few roundings on the path give the 2e-2 bound.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/core/memory_cuda.h"
#include "framework/core/rng.h"
#include "framework/core/stream.h"
#include "framework/core/tensor.h"

namespace ptune::cuda_test {

#define SKIP_WITHOUT_GPU() \
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible"

inline const Device kGpu = Device::cuda(0);
inline constexpr float kF32Tol = 1e-5f;
inline constexpr float kBf16Tol = 2e-2f;

inline uint64_t g_seed = 1234;  // fresh inputs per call; test-local state only

inline Tensor randn(const Shape& s, float stddev = 1.0f) {
  Tensor t = Tensor::empty(s, DType::kF32);
  Rng rng(g_seed++);
  rng.fill_normal(t, 0.0f, stddev);
  return t;
}

// Rounds an f32 CPU tensor through bf16 (so both sides see the same inputs).
inline Tensor round_bf16(const Tensor& t) { return t.to(DType::kBF16).to(DType::kF32); }
inline Tensor to_gpu(const Tensor& t, DType dtype) { return (dtype == DType::kF32 ? t : t.to(dtype)).to(kGpu); }
// A GPU buffer of NaN in `dtype`: what a recycled arena block may hold. An
// op in GradMode::kWrite must overwrite every element without reading any.
inline Tensor nan_gpu(const Shape& s, DType dtype) {
  Tensor t = Tensor::empty(s, DType::kF32);
  std::fill_n(t.data<float>(), t.numel(), std::numeric_limits<float>::quiet_NaN());
  return to_gpu(t, dtype);  // f32 → bf16 keeps NaN
}
inline Tensor to_cpu_f32(const Tensor& t) {
  Tensor c = t.to(Device::cpu());
  return c.dtype() == DType::kF32 ? c : c.to(DType::kF32);
}

// ‖a − b‖ / ‖b‖ over every element; NaN never passes.
inline double rel_err(const Tensor& a, const Tensor& b) {
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (std::isnan(pa[i]) || std::isnan(pb[i])) return INFINITY;
    num += double(pa[i] - pb[i]) * double(pa[i] - pb[i]);
    den += double(pb[i]) * double(pb[i]);
  }
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

#define EXPECT_CLOSE(gpu, cpu, tol) EXPECT_LE(rel_err(to_cpu_f32(gpu), (cpu)), (tol)) << #gpu

class CudaOps : public ::testing::TestWithParam<DType> {
 protected:
  DType dt() const { return GetParam(); }
  float tol() const { return dt() == DType::kF32 ? kF32Tol : kBf16Tol; }
  // Inputs as both sides see them.
  Tensor in(const Shape& s, float stddev = 1.0f) {
    Tensor t = randn(s, stddev);
    return dt() == DType::kF32 ? t : round_bf16(t);
  }
};

}  // namespace ptune::cuda_test
