#include <cmath>

#include "framework/ops/dispatch.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/layernorm.h"

namespace ptune::ops {

void norm_forward(NormKind kind, const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                  const Tensor& w, const Tensor& b, float eps) {
  PTUNE_ROUTE(x, norm_forward, kind, y, mean, rstd, x, w, b, eps);
  const int64_t c = x.size(-1), n = x.numel() / c;
  PTUNE_CHECK(w.numel() == c && y.numel() == x.numel(), "norm_forward: x {} w {} y {}", x.shape().str(),
              w.shape().str(), y.shape().str());
  const bool layer = kind == NormKind::kLayerNorm;
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pb = b.defined() ? b.data<float>() : nullptr;
  float* py = y.data<float>();
  float* pmean = layer ? mean.data<float>() : nullptr;
  float* prstd = rstd.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = px + i * c;
    float m = 0.0f;
    if (layer) {
      for (int64_t j = 0; j < c; ++j) m += xi[j];
      m /= float(c);
    }
    float v = 0.0f;
    for (int64_t j = 0; j < c; ++j) v += (xi[j] - m) * (xi[j] - m);
    const float r = 1.0f / std::sqrt(v / float(c) + eps);
    float* yi = py + i * c;
    for (int64_t j = 0; j < c; ++j) yi[j] = (xi[j] - m) * r * pw[j] + (pb ? pb[j] : 0.0f);
    if (layer) pmean[i] = m;
    prstd[i] = r;
  }
}

void residual_norm_forward(NormKind kind, const Tensor& y, const Tensor& sum, const Tensor& mean, const Tensor& rstd,
                           const Tensor& a, const Tensor& residual, const Tensor& w, const Tensor& b, float eps) {
  // The CUDA kernel is the dropout-capable fused entry with p = 0.
  PTUNE_ROUTE(residual, residual_norm_forward, kind, y, sum, mean, rstd, a, residual, w, b, eps, 0.0f,
              uint64_t{0}, uint64_t{0});
  // On the CPU the two passes are the reference: bit-identical to the unfused ops.
  add_forward(sum, residual, a);
  norm_forward(kind, y, mean, rstd, sum, w, b, eps);
}

void norm_backward(NormKind kind, const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                   const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd) {
  PTUNE_ROUTE(x, norm_backward, kind, dx, dw, db, dy, x, w, mean, rstd);
  const int64_t c = x.size(-1), n = x.numel() / c;
  const bool layer = kind == NormKind::kLayerNorm;
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  const float* pdy = dy.data<float>();
  const float* pmean = layer ? mean.data<float>() : nullptr;
  const float* prstd = rstd.data<float>();
  float* pdx = dx.data<float>();
  // x̂ = (x - μ)·r; with g = dy·w: dx = r·(g - mean(g) - x̂·mean(g·x̂)) for
  // LayerNorm, dx = r·(g - x̂·mean(g·x̂)) for RMSNorm.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float m = layer ? pmean[i] : 0.0f, r = prstd[i];
    const float* xi = px + i * c;
    const float* dyi = pdy + i * c;
    float g_mean = 0.0f, gx_mean = 0.0f;
    for (int64_t j = 0; j < c; ++j) {
      const float g = dyi[j] * pw[j];
      g_mean += g;
      gx_mean += g * (xi[j] - m) * r;
    }
    g_mean = layer ? g_mean / float(c) : 0.0f;
    gx_mean /= float(c);
    float* dxi = pdx + i * c;
    for (int64_t j = 0; j < c; ++j) {
      const float xhat = (xi[j] - m) * r;
      dxi[j] += r * (dyi[j] * pw[j] - g_mean - xhat * gx_mean);
    }
  }
  if (dw.defined() || db.defined()) {
    float* pdw = dw.defined() ? dw.data<float>() : nullptr;
    float* pdb = db.defined() ? db.data<float>() : nullptr;
    for (int64_t i = 0; i < n; ++i) {
      const float m = layer ? pmean[i] : 0.0f, r = prstd[i];
      for (int64_t j = 0; j < c; ++j) {
        const float d = pdy[i * c + j];
        if (pdw) pdw[j] += d * (px[i * c + j] - m) * r;
        if (pdb) pdb[j] += d;
      }
    }
  }
}

HeadNormLayout head_norm_layout(const char* op, const Tensor& x, int64_t col, const Tensor& saved,
                                const Tensor& rstd, const Tensor& w) {
  PTUNE_CHECK(x.dim() >= 2 && saved.dim() == 2, "{}: x {} saved {}: want x (N, W), saved (N·heads, D)", op,
              x.shape().str(), saved.shape().str());
  const int64_t width = x.size(-1), n = x.numel() / width, d = saved.size(1);
  PTUNE_CHECK(n > 0 && saved.size(0) % n == 0, "{}: saved {} for {} rows", op, saved.shape().str(), n);
  const int64_t heads = saved.size(0) / n;
  PTUNE_CHECK(col >= 0 && col + heads * d <= width, "{}: {} heads of {} from column {} overrun width {}", op, heads,
              d, col, width);
  PTUNE_CHECK(w.numel() == d && rstd.numel() == n * heads && rstd.dtype() == DType::kF32 &&
                  saved.dtype() == x.dtype(),
              "{}: w {} rstd {} for {} heads of {}", op, w.shape().str(), rstd.shape().str(), n * heads, d);
  return {n, width, heads, d};
}

void head_rms_norm_forward(const Tensor& qkv, int64_t col, const Tensor& saved, const Tensor& rstd, const Tensor& w,
                           float eps) {
  PTUNE_ROUTE(qkv, head_rms_norm_forward, qkv, col, saved, rstd, w, eps);
  const HeadNormLayout l = head_norm_layout("head_rms_norm_forward", qkv, col, saved, rstd, w);
  float* px = qkv.data<float>();
  float* ps = saved.data<float>();
  float* pr = rstd.data<float>();
  const float* pw = w.data<float>();
  // As norm_forward(kRmsNorm) on the copied-out heads: the same sums in the same order.
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < l.n * l.heads; ++k) {
    float* xk = px + (k / l.heads) * l.width + col + (k % l.heads) * l.d;
    float* sk = ps + k * l.d;
    float v = 0.0f;
    for (int64_t j = 0; j < l.d; ++j) {
      sk[j] = xk[j];
      v += xk[j] * xk[j];
    }
    const float r = 1.0f / std::sqrt(v / float(l.d) + eps);
    for (int64_t j = 0; j < l.d; ++j) xk[j] = sk[j] * r * pw[j];
    pr[k] = r;
  }
}

void head_rms_norm_backward(const Tensor& dqkv, int64_t col, const Tensor& saved, const Tensor& rstd,
                            const Tensor& w) {
  PTUNE_ROUTE(dqkv, head_rms_norm_backward, dqkv, col, saved, rstd, w);
  const HeadNormLayout l = head_norm_layout("head_rms_norm_backward", dqkv, col, saved, rstd, w);
  float* pd = dqkv.data<float>();
  const float* ps = saved.data<float>();
  const float* pr = rstd.data<float>();
  const float* pw = w.data<float>();
  // x̂ = x·r, g = dy·w: dx = r·(g − x̂·mean(g·x̂)), as norm_backward(kRmsNorm).
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < l.n * l.heads; ++k) {
    float* dk = pd + (k / l.heads) * l.width + col + (k % l.heads) * l.d;
    const float* sk = ps + k * l.d;
    const float r = pr[k];
    float gx_mean = 0.0f;
    for (int64_t j = 0; j < l.d; ++j) {
      const float g = dk[j] * pw[j];
      gx_mean += g * sk[j] * r;
    }
    gx_mean /= float(l.d);
    for (int64_t j = 0; j < l.d; ++j) dk[j] = r * (dk[j] * pw[j] - sk[j] * r * gx_mean);
  }
}

}  // namespace ptune::ops
