// RoPE: the rotation against a hand-written reference, its backward against
// finite differences, and the inverse property.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/ops/rope.h"
#include "gradcheck.h"

namespace ptune {
namespace {

using testing::expect_gradient;
using testing::random_tensor;
using testing::weighted_sum;

struct RopeCase {
  ops::AttentionConfig cfg;
  Tensor positions, inv_freq;
  RopeCase(int64_t B, int64_t T) {
    cfg.heads = 4;
    cfg.kv_heads = 2;
    cfg.head_dim = 6;
    positions = Tensor::empty({B, T}, DType::kI32);
    for (int64_t i = 0; i < B * T; ++i) positions.data<int32_t>()[i] = int32_t((i * 7) % 11);
    inv_freq = Tensor::empty({3}, DType::kF32);
    const float f[3] = {1.0f, 0.3f, 0.05f};
    for (int i = 0; i < 3; ++i) inv_freq.data<float>()[i] = f[i];
  }
};

TEST(Rope, RotatesQueriesAndKeysLikeRotateHalf) {
  const int64_t B = 2, T = 3;
  RopeCase s(B, T);
  const int64_t W = s.cfg.qkv_width(), D = 6, half = 3;
  Tensor x = random_tensor({B, T, W}, 11), y = Tensor::empty({B, T, W}, DType::kF32);
  y.copy_from(x);
  ops::rope_forward(y, s.positions, s.inv_freq, s.cfg);
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const double pos = s.positions.data<int32_t>()[bt];
    for (int64_t c = 0; c < W; ++c) {
      const float* row = x.data<float>() + bt * W;
      double want = row[c];
      if (c < (s.cfg.heads + s.cfg.kv_heads) * D) {  // q and k heads; values stay
        const int64_t h = c / D, i = c % D, j = i % half;
        const double a = pos * s.inv_freq.data<float>()[j];
        // q·cos + rotate_half(q)·sin, rotate_half(q) = (−q2, q1)
        const double rot = i < half ? -row[h * D + i + half] : row[h * D + i - half];
        want = row[c] * std::cos(a) + rot * std::sin(a);
      }
      EXPECT_NEAR(y.data<float>()[bt * W + c], want, 1e-5) << bt << "," << c;
    }
  }
  // backward rotates back: the inverse of forward.
  ops::rope_backward(y, s.positions, s.inv_freq, s.cfg);
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_NEAR(y.data<float>()[i], x.data<float>()[i], 1e-5);
}

TEST(Rope, BackwardMatchesFiniteDifferences) {
  const int64_t B = 2, T = 2;
  RopeCase s(B, T);
  const int64_t W = s.cfg.qkv_width();
  Tensor x = random_tensor({B, T, W}, 12), r = random_tensor({B, T, W}, 13);
  Tensor y = Tensor::empty({B, T, W}, DType::kF32);
  auto loss = [&] {
    y.copy_from(x);
    ops::rope_forward(y, s.positions, s.inv_freq, s.cfg);
    return weighted_sum(y, r);
  };
  Tensor dx = Tensor::empty({B, T, W}, DType::kF32);
  dx.copy_from(r);
  ops::rope_backward(dx, s.positions, s.inv_freq, s.cfg);
  expect_gradient("dqkv", x, dx, loss);
}

}  // namespace
}  // namespace ptune
