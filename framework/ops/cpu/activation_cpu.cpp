#include <cmath>
#include <string>

#include "framework/ops/activation.h"
#include "framework/ops/cpu/vec_math.h"
#include "framework/ops/dispatch.h"

namespace ptune::ops {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

inline float forward(Activation f, float x) {
  switch (f) {
    case Activation::kGeluTanh: return 0.5f * x * (1.0f + tanh_simd(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    case Activation::kGeluErf: return 0.5f * x * (1.0f + erf_simd(x * kInvSqrt2));
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
    case Activation::kTanh: return tanh_simd(x);
    case Activation::kSilu: return x * sigmoid_simd(x);
  }
  return 0.0f;
}

inline float derivative(Activation f, float x) {
  switch (f) {
    case Activation::kGeluTanh: {
      const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
      const float t = tanh_simd(u);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
    case Activation::kGeluErf:
      return 0.5f * (1.0f + erf_simd(x * kInvSqrt2)) + x * kInvSqrt2Pi * exp_simd(-0.5f * x * x);
    case Activation::kRelu: return x > 0.0f ? 1.0f : 0.0f;
    case Activation::kTanh: {
      const float t = tanh_simd(x);
      return 1.0f - t * t;
    }
    case Activation::kSilu: {
      const float s = sigmoid_simd(x);
      return s * (1.0f + x * (1.0f - s));
    }
  }
  return 0.0f;
}
// Calls body(kind) with `kind()` a compile-time constant, so the switch in
// forward/derivative folds away inside the loop.
template <class Body>
void for_each_activation(Activation f, Body&& body) {
  switch (f) {
    case Activation::kGeluTanh: return body([] { return Activation::kGeluTanh; });
    case Activation::kGeluErf: return body([] { return Activation::kGeluErf; });
    case Activation::kRelu: return body([] { return Activation::kRelu; });
    case Activation::kTanh: return body([] { return Activation::kTanh; });
    case Activation::kSilu: return body([] { return Activation::kSilu; });
  }
}

}  // namespace

Activation activation_from_name(const std::string& name) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::kGeluTanh;
  if (name == "gelu") return Activation::kGeluErf;
  if (name == "relu") return Activation::kRelu;
  if (name == "tanh") return Activation::kTanh;
  if (name == "silu" || name == "swish") return Activation::kSilu;
  PTUNE_FAIL("unsupported activation '{}' (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, tanh, silu)", name);
}

void activation_forward(Activation f, const Tensor& y, const Tensor& x) {
  PTUNE_ROUTE(x, activation_forward, f, y, x);
  PTUNE_CHECK(x.numel() == y.numel(), "activation_forward: x {} y {}", x.shape().str(), y.shape().str());
  const float* px = x.data<float>();
  float* py = y.data<float>();
  const int64_t n = x.numel();
  for_each_activation(f, [&](auto kind) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) py[i] = forward(kind(), px[i]);
  });
}

void activation_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x) {
  PTUNE_ROUTE(x, activation_backward, f, dx, dy, x);
  const float* px = x.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  const int64_t n = x.numel();
  for_each_activation(f, [&](auto kind) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pdx[i] += pdy[i] * derivative(kind(), px[i]);
  });
}

}  // namespace ptune::ops
