// RoPE: the rotation against a hand-written reference, its backward against
// finite differences, and the inverse property; also over part of each head
// (Phi-3's partial_rotary_factor) with LongRoPE's scaled cos and sin.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "expect_error.h"
#include "framework/ops/rope.h"
#include "gradcheck.h"

namespace ptune {
namespace {

using testing::expect_gradient;
using testing::random_tensor;
using testing::weighted_sum;

// Heads of width D = 6 (or 10, of which the first 6 rotate: R = 6).
struct RopeCase {
  ops::AttentionConfig cfg;
  Tensor positions, inv_freq;
  RopeCase(int64_t B, int64_t T, int64_t head_dim = 6) {
    cfg.heads = 4;
    cfg.kv_heads = 2;
    cfg.head_dim = head_dim;
    positions = Tensor::empty({B, T}, DType::kI32);
    for (int64_t i = 0; i < B * T; ++i) positions.data<int32_t>()[i] = int32_t((i * 7) % 11);
    inv_freq = Tensor::empty({3}, DType::kF32);
    const float f[3] = {1.0f, 0.3f, 0.05f};
    for (int i = 0; i < 3; ++i) inv_freq.data<float>()[i] = f[i];
  }
};

struct RopeParams {
  int64_t head_dim;  // 6: the whole head rotates; 10: its first 6 columns
  float scale;
};
class Rope : public ::testing::TestWithParam<RopeParams> {};

TEST_P(Rope, RotatesQueriesAndKeysLikeRotateHalf) {
  const int64_t B = 2, T = 3;
  RopeCase s(B, T, GetParam().head_dim);
  const float scale = GetParam().scale;
  const int64_t W = s.cfg.qkv_width(), D = s.cfg.head_dim, R = 6, half = 3;
  Tensor x = random_tensor({B, T, W}, 11), y = Tensor::empty({B, T, W}, DType::kF32);
  y.copy_from(x);
  ops::rope_forward(y, s.positions, s.inv_freq, s.cfg, scale);
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const double pos = s.positions.data<int32_t>()[bt];
    for (int64_t c = 0; c < W; ++c) {
      const float* row = x.data<float>() + bt * W;
      double want = row[c];
      // q and k heads' first R columns, as Phi-3's apply_rotary_pos_emb
      // splits q_rot, q_pass; values and q_pass stay.
      if (c < (s.cfg.heads + s.cfg.kv_heads) * D && c % D < R) {
        const int64_t h = c / D, i = c % D, j = i % half;
        const double a = pos * s.inv_freq.data<float>()[j];
        // q·cos + rotate_half(q)·sin, rotate_half(q) = (−q2, q1), cos and sin times the scale
        const double rot = i < half ? -row[h * D + i + half] : row[h * D + i - half];
        want = scale * (row[c] * std::cos(a) + rot * std::sin(a));
      }
      EXPECT_NEAR(y.data<float>()[bt * W + c], want, 1e-5) << bt << "," << c;
    }
  }
  // backward turns back: the inverse of forward, times scale².
  ops::rope_backward(y, s.positions, s.inv_freq, s.cfg, scale);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const bool rotated = i % W < (s.cfg.heads + s.cfg.kv_heads) * D && i % W % D < R;
    EXPECT_NEAR(y.data<float>()[i], x.data<float>()[i] * (rotated ? scale * scale : 1.0f), 1e-5) << i;
  }
}

TEST_P(Rope, BackwardMatchesFiniteDifferences) {
  const int64_t B = 2, T = 2;
  RopeCase s(B, T, GetParam().head_dim);
  const int64_t W = s.cfg.qkv_width();
  Tensor x = random_tensor({B, T, W}, 12), r = random_tensor({B, T, W}, 13);
  Tensor y = Tensor::empty({B, T, W}, DType::kF32);
  auto loss = [&] {
    y.copy_from(x);
    ops::rope_forward(y, s.positions, s.inv_freq, s.cfg, GetParam().scale);
    return weighted_sum(y, r);
  };
  Tensor dx = Tensor::empty({B, T, W}, DType::kF32);
  dx.copy_from(r);
  ops::rope_backward(dx, s.positions, s.inv_freq, s.cfg, GetParam().scale);
  expect_gradient("dqkv", x, dx, loss);
}

INSTANTIATE_TEST_SUITE_P(Widths, Rope,
                         ::testing::Values(RopeParams{6, 1.0f}, RopeParams{10, 1.0f}, RopeParams{10, 1.19f}),
                         [](const auto& info) {
                           return "D" + std::to_string(info.param.head_dim) +
                                  (info.param.scale == 1.0f ? "" : "_scaled");
                         });

TEST(RopeErrors, MoreFrequenciesThanHalfTheHead) {
  RopeCase s(1, 2, 4);  // 3 frequencies for D = 4
  Tensor y = random_tensor({1, 2, s.cfg.qkv_width()}, 14);
  testing::expect_error([&] { ops::rope_forward(y, s.positions, s.inv_freq, s.cfg); },
                        {"rope_forward", "inv_freq of 3 frequencies for head dim 4"});
}

}  // namespace
}  // namespace ptune
