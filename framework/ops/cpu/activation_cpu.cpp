#include <cmath>
#include <string>

#include "framework/ops/activation.h"
#include "framework/ops/dispatch.h"

namespace ptune::ops {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

inline float forward(Activation f, float x) {
  switch (f) {
    case Activation::kGeluTanh: return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    case Activation::kGeluErf: return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
    case Activation::kTanh: return std::tanh(x);
    case Activation::kSilu: return x / (1.0f + std::exp(-x));
  }
  return 0.0f;
}

inline float derivative(Activation f, float x) {
  switch (f) {
    case Activation::kGeluTanh: {
      const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
      const float t = std::tanh(u);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
    case Activation::kGeluErf:
      return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
    case Activation::kRelu: return x > 0.0f ? 1.0f : 0.0f;
    case Activation::kTanh: {
      const float t = std::tanh(x);
      return 1.0f - t * t;
    }
    case Activation::kSilu: {
      const float s = 1.0f / (1.0f + std::exp(-x));
      return s * (1.0f + x * (1.0f - s));
    }
  }
  return 0.0f;
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
  PTUNE_REQUIRE_CPU(x, "activation_forward");
  PTUNE_CHECK(x.numel() == y.numel(), "activation_forward: x {} y {}", x.shape().str(), y.shape().str());
  const float* px = x.data<float>();
  float* py = y.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) py[i] = forward(f, px[i]);
}

void activation_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x) {
  PTUNE_REQUIRE_CPU(x, "activation_backward");
  const float* px = x.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) pdx[i] += pdy[i] * derivative(f, px[i]);
}

}  // namespace ptune::ops
