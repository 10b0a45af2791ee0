// ops/cpu/vec_math.h against libm in double precision: exp to 2 ulp over
// the whole clamped range, the documented saturation at both ends, NaN
// propagation, the sigmoid / tanh built on it, and erf.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "framework/ops/cpu/vec_math.h"

namespace ptune {
namespace {

// x from lo to hi in relative steps of 1e-4 (plus a linear step near 0), so
// every binade and both halves of each range-reduction interval are hit.
template <class F>
void sweep(float lo, float hi, F&& f) {
  for (float x = lo; x <= hi; x += std::max(std::fabs(x) * 1e-4f, 1e-6f)) f(x);
}

TEST(VecMath, ExpWithinTwoUlp) {
  double worst = 0.0;
  float at = 0.0f;
  sweep(-87.0f, 88.0f, [&](float x) {
    const double ref = std::exp(double(x));
    const double rel = std::fabs(double(ops::exp_simd(x)) - ref) / ref;
    if (rel > worst) {
      worst = rel;
      at = x;
    }
  });
  EXPECT_LE(worst, 2.0 * std::numeric_limits<float>::epsilon()) << "at x = " << at;
}

TEST(VecMath, ExpSaturatesAndKeepsNan) {
  for (float x : {-88.0f, -1000.0f, -std::numeric_limits<float>::infinity()}) {
    const float e = ops::exp_simd(x);
    EXPECT_GT(e, 0.0f) << x;
    EXPECT_LT(e, 2e-38f) << x;
  }
  for (float x : {89.0f, 1000.0f, std::numeric_limits<float>::infinity()}) {
    const float e = ops::exp_simd(x);
    EXPECT_TRUE(std::isfinite(e)) << x;
    EXPECT_GT(e, 1e38f) << x;
  }
  EXPECT_TRUE(std::isnan(ops::exp_simd(std::numeric_limits<float>::quiet_NaN())));
}

TEST(VecMath, SigmoidAndTanh) {
  double worst_sigmoid = 0.0, worst_tanh = 0.0;
  sweep(-60.0f, 60.0f, [&](float x) {
    const double s = 1.0 / (1.0 + std::exp(-double(x)));
    worst_sigmoid = std::max(worst_sigmoid, std::fabs(double(ops::sigmoid_simd(x)) - s));
    worst_tanh = std::max(worst_tanh, std::fabs(double(ops::tanh_simd(x)) - std::tanh(double(x))));
  });
  EXPECT_LE(worst_sigmoid, 2e-7);
  EXPECT_LE(worst_tanh, 4e-7);
  EXPECT_EQ(ops::tanh_simd(-0.0f), 0.0f);
  EXPECT_TRUE(std::signbit(ops::tanh_simd(-1e-3f)));
}

// The exact GELU's erf: within A&S 7.1.26's 1.5e−7 (plus float rounding)
// everywhere, odd, saturating to ±1, NaN kept.
TEST(VecMath, ErfWithinAbramowitzStegunBound) {
  double worst = 0.0;
  float at = 0.0f;
  sweep(-12.0f, 12.0f, [&](float x) {
    const double err = std::fabs(double(ops::erf_simd(x)) - std::erf(double(x)));
    if (err > worst) {
      worst = err;
      at = x;
    }
  });
  EXPECT_LE(worst, 2.5e-7) << "at x = " << at;
  EXPECT_EQ(ops::erf_simd(0.0f), 0.0f);
  EXPECT_EQ(ops::erf_simd(-0.7f), -ops::erf_simd(0.7f));
  EXPECT_EQ(ops::erf_simd(30.0f), 1.0f);
  EXPECT_EQ(ops::erf_simd(-std::numeric_limits<float>::infinity()), -1.0f);
  EXPECT_TRUE(std::isnan(ops::erf_simd(std::numeric_limits<float>::quiet_NaN())));
}

}  // namespace
}  // namespace ptune
