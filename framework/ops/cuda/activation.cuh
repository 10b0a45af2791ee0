// The activation formulas on the device, once, for the elementwise
// activation kernels (elementwise_cuda.cu) and the fused gated MLP kernels
// (swiglu_cuda.cu); f32 math, the CPU's formulas (ops/cpu/activation_cpu.cpp).
#pragma once

#include "framework/ops/activation.h"

namespace ptune::ops::cuda {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

// f(x) and f'(x). Computed together, they share their transcendental (SiLU's
// sigmoid, GELU's tanh or erf); a caller that reads one of them leaves the
// other to dead-code elimination.
struct ActValue {
  float value, derivative;
};

__device__ __forceinline__ ActValue act_value_and_derivative(Activation f, float x) {
  switch (f) {
    case Activation::kGeluTanh: {
      const float t = tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x));
      const float du = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
      return {0.5f * x * (1.0f + t), 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du};
    }
    case Activation::kGeluErf: {
      const float e = erff(x * kInvSqrt2);
      return {0.5f * x * (1.0f + e), 0.5f * (1.0f + e) + x * kInvSqrt2Pi * expf(-0.5f * x * x)};
    }
    case Activation::kRelu: return {x > 0.0f ? x : 0.0f, x > 0.0f ? 1.0f : 0.0f};
    case Activation::kTanh: {
      const float t = tanhf(x);
      return {t, 1.0f - t * t};
    }
    case Activation::kSilu: {
      const float s = 1.0f / (1.0f + expf(-x));
      return {x * s, s * (1.0f + x * (1.0f - s))};
    }
  }
  return {0.0f, 0.0f};
}

__device__ __forceinline__ float act_forward(Activation f, float x) { return act_value_and_derivative(f, x).value; }

__device__ __forceinline__ float act_derivative(Activation f, float x) {
  return act_value_and_derivative(f, x).derivative;
}

// Instantiates `__VA_ARGS__` with the compile-time Activation F = f, so a
// kernel's per-element switch folds away.
#define PTUNE_ACTIVATION_CASE(A, F, ...) \
  case A: {                              \
    constexpr Activation F = A;          \
    __VA_ARGS__;                         \
    break;                               \
  }
#define PTUNE_ACTIVATION_DISPATCH(f, F, ...)                         \
  switch (f) {                                                       \
    PTUNE_ACTIVATION_CASE(Activation::kGeluTanh, F, __VA_ARGS__)     \
    PTUNE_ACTIVATION_CASE(Activation::kGeluErf, F, __VA_ARGS__)      \
    PTUNE_ACTIVATION_CASE(Activation::kRelu, F, __VA_ARGS__)         \
    PTUNE_ACTIVATION_CASE(Activation::kTanh, F, __VA_ARGS__)         \
    PTUNE_ACTIVATION_CASE(Activation::kSilu, F, __VA_ARGS__)         \
  }

}  // namespace ptune::ops::cuda
