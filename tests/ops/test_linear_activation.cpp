// The fused MLP ops (ops/linear.h): on the CPU they are exactly the
// composition of linear and activation ops they replace (so the model's
// CPU results do not move by one bit), and their gradients match finite
// differences of a whole MLP x → f(x·w1ᵀ + b1) · w2ᵀ + b2.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "framework/ops/activation.h"
#include "framework/ops/linear.h"
#include "gradcheck.h"

namespace ptune {
namespace {

using testing::expect_gradient;
using testing::random_tensor;
using testing::weighted_sum;

constexpr ops::Activation kAll[] = {ops::Activation::kGeluTanh, ops::Activation::kGeluErf, ops::Activation::kRelu,
                                    ops::Activation::kTanh, ops::Activation::kSilu};

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Filled with NaN: an op that reads an output it should only write shows it.
Tensor nan_tensor(const Shape& s) {
  Tensor t = Tensor::empty(s, DType::kF32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  return t;
}

TEST(LinearActivation, ForwardIsLinearThenActivationBitForBit) {
  const int64_t n = 7, in = 12, out = 9;  // (B·T, C) → (B·T, I), odd rows
  Tensor x = random_tensor({n, in}, 31), w = random_tensor({out, in}, 32, 0.3f), b = random_tensor({out}, 33);
  for (ops::Activation f : kAll)
    for (bool with_bias : {true, false}) {
      const Tensor bias = with_bias ? b : Tensor();
      Tensor pre = Tensor::empty({n, out}, DType::kF32), act = Tensor::empty({n, out}, DType::kF32);
      ops::linear_forward(pre, x, w, bias);
      ops::activation_forward(f, act, pre);
      Tensor fpre = nan_tensor({n, out}), fact = nan_tensor({n, out});
      ops::linear_activation_forward(f, fact, fpre, x, w, bias);
      EXPECT_TRUE(same_bits(fpre, pre)) << int(f) << " bias " << with_bias;
      EXPECT_TRUE(same_bits(fact, act)) << int(f) << " bias " << with_bias;
    }
}

TEST(LinearActivation, BackwardIsLinearThenActivationBackwardBitForBit) {
  const int64_t n = 7, in = 9, out = 12;  // dy (N, C) · w2 (C, I) → dpre (N, I)
  Tensor pre = random_tensor({n, in}, 34), dy = random_tensor({n, out}, 35), w = random_tensor({out, in}, 36, 0.3f);
  for (ops::Activation f : kAll) {
    // Today's unfused path: both buffers zeroed, both ops accumulate.
    Tensor dact = Tensor::zeros({n, in}, DType::kF32), dpre = Tensor::zeros({n, in}, DType::kF32);
    ops::linear_backward_input(dact, dy, w);
    ops::activation_backward(f, dpre, dact, pre);
    // The fused op writes dpre and neither reads it nor the scratch first.
    Tensor fdpre = nan_tensor({n, in}), scratch = nan_tensor({n, in});
    ops::linear_activation_backward_input(f, fdpre, scratch, dy, w, pre);
    EXPECT_TRUE(same_bits(fdpre, dpre)) << int(f);
  }
}

TEST(LinearActivation, MlpGradientMatchesFiniteDifferences) {
  // ReLU is left out: its kink makes central differences unreliable; the
  // bit-for-bit test above covers it.
  for (ops::Activation f : {ops::Activation::kGeluTanh, ops::Activation::kGeluErf, ops::Activation::kTanh,
                            ops::Activation::kSilu}) {
    const int64_t n = 3, c = 4, i = 6;
    Tensor x = random_tensor({n, c}, 40), w1 = random_tensor({i, c}, 41, 0.5f), b1 = random_tensor({i}, 42),
           w2 = random_tensor({c, i}, 43, 0.5f), b2 = random_tensor({c}, 44), r = random_tensor({n, c}, 45);
    Tensor pre = Tensor::empty({n, i}, DType::kF32), act = Tensor::empty({n, i}, DType::kF32),
           y = Tensor::empty({n, c}, DType::kF32);
    auto loss = [&] {
      ops::linear_activation_forward(f, act, pre, x, w1, b1);
      ops::linear_forward(y, act, w2, b2);
      return weighted_sum(y, r);
    };
    loss();  // pre at the unperturbed x, for backward
    Tensor dpre = Tensor::empty({n, i}, DType::kF32), scratch = Tensor::empty({n, i}, DType::kF32),
           dx = Tensor::zeros({n, c}, DType::kF32);
    ops::linear_activation_backward_input(f, dpre, scratch, r, w2, pre);
    ops::linear_backward_input(dx, dpre, w1);
    expect_gradient("dx", x, dx, loss);
  }
}

}  // namespace
}  // namespace ptune
