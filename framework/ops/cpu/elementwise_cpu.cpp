#include "framework/core/rng.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/elementwise.h"

namespace ptune::ops {

void add_forward(const Tensor& y, const Tensor& a, const Tensor& b) {
  PTUNE_ROUTE(a, add_forward, y, a, b);
  PTUNE_CHECK(a.numel() == b.numel() && a.numel() == y.numel(), "add_forward: {} + {} -> {}", a.shape().str(),
              b.shape().str(), y.shape().str());
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* py = y.data<float>();
  const int64_t n = a.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) py[i] = pa[i] + pb[i];
}

void accumulate(const Tensor& dst, const Tensor& src) {
  PTUNE_ROUTE(dst, accumulate, dst, src);
  PTUNE_CHECK(dst.numel() == src.numel(), "accumulate: {} += {}", dst.shape().str(), src.shape().str());
  const float* ps = src.data<float>();
  float* pd = dst.data<float>();
  const int64_t n = dst.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) pd[i] += ps[i];
}

void scale_(const Tensor& t, float s) {
  PTUNE_ROUTE(t, scale_, t, s);
  float* p = t.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] *= s;
}

void dropout_forward(const Tensor& y, const Tensor& x, float p, uint64_t seed, uint64_t offset) {
  PTUNE_ROUTE(x, dropout_forward, y, x, p, seed, offset);
  PTUNE_CHECK(p >= 0.0f && p < 1.0f, "dropout probability {} must be in [0, 1)", p);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  const float keep_scale = 1.0f / (1.0f - p);
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    py[i] = philox_uniform(seed, offset + uint64_t(i)) >= p ? px[i] * keep_scale : 0.0f;
}

void dropout_backward(const Tensor& dx, const Tensor& dy, float p, uint64_t seed, uint64_t offset) {
  PTUNE_ROUTE(dy, dropout_backward, dx, dy, p, seed, offset);
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  const float keep_scale = 1.0f / (1.0f - p);
  const int64_t n = dy.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    if (philox_uniform(seed, offset + uint64_t(i)) >= p) pdx[i] += pdy[i] * keep_scale;
}

}  // namespace ptune::ops
