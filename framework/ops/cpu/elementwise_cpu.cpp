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

void convert(const Tensor& dst, const Tensor& src) {
  PTUNE_CHECK(dst.numel() == src.numel(), "convert: {} into {}", src.shape().str(), dst.shape().str());
  const int64_t n = dst.numel();
  copy_columns(dst.view({1, n}), 0, src.view({1, n}), 0, n, false);
}

namespace {
float load(const Tensor& t, int64_t i) {
  return t.dtype() == DType::kF32 ? static_cast<const float*>(t.raw())[i]
                                  : bf16_to_f32(static_cast<const uint16_t*>(t.raw())[i]);
}
void store(const Tensor& t, int64_t i, float v) {
  if (t.dtype() == DType::kF32) static_cast<float*>(t.raw())[i] = v;
  else static_cast<uint16_t*>(t.raw())[i] = f32_to_bf16(v);
}
}  // namespace

void copy_columns(const Tensor& dst, int64_t dst_col, const Tensor& src, int64_t src_col, int64_t width,
                  bool accumulate) {
  PTUNE_CHECK(dst.dim() == 2 && src.dim() == 2 && dst.size(0) == src.size(0) && width >= 0 && dst_col >= 0 &&
                  src_col >= 0 && dst_col + width <= dst.size(1) && src_col + width <= src.size(1),
              "copy_columns: {} columns from {} at {} into {} at {}", width, src.shape().str(), src_col,
              dst.shape().str(), dst_col);
  for (const Tensor* t : {&dst, &src})
    PTUNE_CHECK(t->dtype() == DType::kF32 || t->dtype() == DType::kBF16, "copy_columns: dtype {} (f32 or bf16)",
                dtype_name(t->dtype()));
  PTUNE_ROUTE(dst, copy_columns, dst, dst_col, src, src_col, width, accumulate);
  PTUNE_CHECK(src.device().is_cpu(), "copy_columns: src on {}, dst on the CPU", src.device().str());
  const int64_t N = dst.size(0), dw = dst.size(1), sw = src.size(1);
#pragma omp parallel for schedule(static) if (N * width > (1 << 16))
  for (int64_t r = 0; r < N; ++r)
    for (int64_t j = 0; j < width; ++j) {
      const int64_t d = r * dw + dst_col + j;
      const float v = load(src, r * sw + src_col + j);
      store(dst, d, accumulate ? load(dst, d) + v : v);
    }
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
