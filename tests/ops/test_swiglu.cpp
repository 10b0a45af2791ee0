// Gated MLP activation (SwiGLU): forward by hand, backward by finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/ops/swiglu.h"
#include "gradcheck.h"

namespace ptune {
namespace {

using testing::expect_gradient;
using testing::random_tensor;
using testing::weighted_sum;

TEST(Swiglu, ForwardIsSiluGateTimesUp) {
  const int64_t N = 3, I = 4;
  Tensor x = random_tensor({N, 2 * I}, 21), y = Tensor::empty({N, I}, DType::kF32);
  ops::gated_forward(ops::Activation::kSilu, y, x);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) {
      const double g = x.data<float>()[n * 2 * I + i], u = x.data<float>()[n * 2 * I + I + i];
      EXPECT_NEAR(y.data<float>()[n * I + i], g / (1.0 + std::exp(-g)) * u, 1e-6);
    }
}

TEST(Swiglu, BackwardMatchesFiniteDifferences) {
  for (ops::Activation f : {ops::Activation::kSilu, ops::Activation::kGeluTanh}) {
    const int64_t N = 3, I = 5;
    Tensor x = random_tensor({N, 2 * I}, 22), r = random_tensor({N, I}, 23), y = Tensor::empty({N, I}, DType::kF32);
    auto loss = [&] {
      ops::gated_forward(f, y, x);
      return weighted_sum(y, r);
    };
    Tensor dx = Tensor::zeros({N, 2 * I}, DType::kF32);
    ops::gated_backward(f, dx, r, x);
    expect_gradient("dx", x, dx, loss);
  }
}

}  // namespace
}  // namespace ptune
