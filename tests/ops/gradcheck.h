// Finite-difference gradient checks for the ops' backward passes.
//
// A check builds the scalar L = Σ forward(inputs) ⊙ R for a fixed random R,
// so the analytic gradient is backward(dy = R), and compares it with central
// differences (L(x + ε) − L(x − ε)) / 2ε, accumulated in double.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "framework/core/rng.h"
#include "framework/core/tensor.h"

namespace ptune::testing {

inline Tensor random_tensor(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  Tensor t = Tensor::empty(shape, DType::kF32);
  Rng(seed).fill_normal(t, 0.0f, scale);
  return t;
}

inline double weighted_sum(const Tensor& y, const Tensor& r) {
  double s = 0.0;
  for (int64_t i = 0; i < y.numel(); ++i) s += double(y.data<float>()[i]) * r.data<float>()[i];
  return s;
}

// loss() recomputes the scalar from the current contents of `x`; `grad`
// holds the analytic gradient. Checks every element (or a stride of them).
inline void expect_gradient(const char* what, const Tensor& x, const Tensor& grad, const std::function<double()>& loss,
                            float eps = 1e-2f, double rtol = 1e-2, double atol = 1e-3, int64_t stride = 1) {
  ASSERT_EQ(x.numel(), grad.numel()) << what;
  float* px = x.data<float>();
  int failures = 0;
  for (int64_t i = 0; i < x.numel(); i += stride) {
    const float saved = px[i];
    px[i] = saved + eps;
    const double up = loss();
    px[i] = saved - eps;
    const double down = loss();
    px[i] = saved;
    const double numeric = (up - down) / (2.0 * double(eps));
    const double analytic = grad.data<float>()[i];
    if (std::fabs(numeric - analytic) > atol + rtol * std::fabs(numeric) && failures++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: analytic " << analytic << " vs numeric " << numeric;
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " elements differ";
}

}  // namespace ptune::testing
