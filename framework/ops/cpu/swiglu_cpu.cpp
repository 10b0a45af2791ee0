#include <algorithm>
#include <cmath>
#include <type_traits>

#include "framework/ops/cpu/vec_math.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/swiglu.h"

namespace ptune::ops {

namespace {

void check(const Tensor& x, const Tensor& y, const char* op) {
  PTUNE_CHECK(x.dim() >= 1 && y.dim() >= 1 && x.size(-1) == 2 * y.size(-1) && x.numel() == 2 * y.numel(),
              "{}: x {} must be (N, 2I) for y {} (N, I)", op, x.shape().str(), y.shape().str());
}

}  // namespace

void gated_forward(Activation f, const Tensor& y, const Tensor& x) {
  PTUNE_ROUTE(x, gated_forward, f, y, x);
  check(x, y, "gated_forward");
  const int64_t I = y.size(-1), N = y.numel() / I;
  const float* px = x.data<float>();
  float* py = y.data<float>();
  if (f == Activation::kSilu) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* g = px + n * 2 * I;
      const float* u = g + I;
      float* o = py + n * I;
      for (int64_t i = 0; i < I; ++i) o[i] = g[i] * sigmoid_simd(g[i]) * u[i];
    }
    return;
  }
  // Other activations: the activation op on each row's gate, then · up.
  for (int64_t n = 0; n < N; ++n) {
    Tensor gate = Tensor::borrow(const_cast<float*>(px) + n * 2 * I, {I}, DType::kF32);
    Tensor out = Tensor::borrow(py + n * I, {I}, DType::kF32);
    activation_forward(f, out, gate);
    for (int64_t i = 0; i < I; ++i) py[n * I + i] *= px[n * 2 * I + I + i];
  }
}

void gated_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x, GradMode mode) {
  PTUNE_ROUTE(x, gated_backward, f, dx, dy, x, mode);
  check(x, dy, "gated_backward");
  PTUNE_CHECK(dx.numel() == x.numel(), "gated_backward: dx {} for x {}", dx.shape().str(), x.shape().str());
  const int64_t I = dy.size(-1), N = dy.numel() / I;
  const float* px = x.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  // kWrite stores what kAdd adds to a zeroed dx: 0 + v is v, so both modes agree exactly.
  const bool write = mode == GradMode::kWrite;
  if (f == Activation::kSilu) {
    // Write is a compile-time constant, so neither loop loads dx
    // conditionally, which would keep it from vectorising.
    auto rows = [&](auto write) {
#pragma omp parallel for schedule(static)
      for (int64_t n = 0; n < N; ++n) {
        const float* g = px + n * 2 * I;
        const float* u = g + I;
        const float* d = pdy + n * I;
        float* dg = pdx + n * 2 * I;
        float* du = dg + I;
#pragma omp simd
        for (int64_t i = 0; i < I; ++i) {
          const float s = sigmoid_simd(g[i]);
          const float vu = d[i] * g[i] * s;
          const float vg = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
          du[i] = write ? vu : du[i] + vu;
          dg[i] = write ? vg : dg[i] + vg;
        }
      }
    };
    if (write) rows(std::true_type{});
    else rows(std::false_type{});
    return;
  }
  Tensor act = Tensor::empty({I}, DType::kF32), dup = Tensor::empty({I}, DType::kF32);
  for (int64_t n = 0; n < N; ++n) {
    Tensor gate = Tensor::borrow(const_cast<float*>(px) + n * 2 * I, {I}, DType::kF32);
    float* dg = pdx + n * 2 * I;
    float* du = dg + I;
    // activation_backward accumulates, so a written row's gate half starts at 0.
    if (write) std::fill_n(dg, I, 0.0f);
    activation_forward(f, act, gate);
    for (int64_t i = 0; i < I; ++i) {
      const float v = pdy[n * I + i] * act.data<float>()[i];  // ∂/∂up = f(gate)
      du[i] = write ? v : du[i] + v;
      dup.data<float>()[i] = pdy[n * I + i] * px[n * 2 * I + I + i];  // dy · up
    }
    activation_backward(f, Tensor::borrow(dg, {I}, DType::kF32), dup, gate);
  }
}

}  // namespace ptune::ops
