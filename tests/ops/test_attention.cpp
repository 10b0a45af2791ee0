// Attention forward against a naive double-precision loop, backward against
// finite differences, over causal/bidirectional, padding, GQA, a prefix and
// a sliding window (which hides prefix keys from later queries too).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "framework/ops/attention.h"
#include "expect_error.h"
#include "gradcheck.h"

namespace ptune {
namespace {

using testing::expect_gradient;
using testing::random_tensor;
using testing::weighted_sum;

struct Case {
  int64_t heads, kv_heads, prefix;
  ops::AttentionMask mask;
  bool padded;
  int64_t seq = 5;  // > 64 splits causal attention into query blocks on the CPU
  int64_t window = 0;
};

class Attention : public ::testing::TestWithParam<Case> {
 protected:
  static constexpr int64_t B = 2, D = 3;
  int64_t T = 0;

  void SetUp() override {
    const Case c = GetParam();
    T = c.seq;
    cfg.heads = c.heads;
    cfg.kv_heads = c.kv_heads;
    cfg.head_dim = D;
    cfg.mask = c.mask;
    cfg.scale = 1.0f / std::sqrt(float(D));
    cfg.window = c.window;
    qkv = random_tensor({B, T, cfg.qkv_width()}, 1);
    if (c.prefix) {
      prefix_k = random_tensor({c.prefix, cfg.kv_width()}, 2);
      prefix_v = random_tensor({c.prefix, cfg.kv_width()}, 3);
    }
    if (c.padded) {  // second sequence: last two tokens are padding
      key_mask = Tensor::empty({B, T}, DType::kI32);
      for (int64_t i = 0; i < B * T; ++i) key_mask.data<int32_t>()[i] = !(i >= T && i % T >= T - 2);
    }
    out = Tensor::empty({B, T, cfg.q_width()}, DType::kF32);
    probs = Tensor::empty({B, cfg.heads, T, c.prefix + T}, DType::kF32);
  }

  // out[b, t, h·D + d] computed the obvious way, in double.
  std::vector<double> naive() const {
    const Case c = GetParam();
    const int64_t W = cfg.qkv_width(), P = c.prefix, group = cfg.heads / cfg.kv_heads;
    std::vector<double> result(size_t(B * T * cfg.q_width()), 0.0);
    const float* x = qkv.data<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < cfg.heads; ++h)
        for (int64_t i = 0; i < T; ++i) {
          const int64_t g = h / group;
          std::vector<double> score, value_rows;
          std::vector<const float*> values;
          auto q = [&](int64_t d) { return double(x[(b * T + i) * W + h * D + d]); };
          // Keys are numbered over the prefix then the tokens; query i is key P + i.
          auto in_window = [&](int64_t key) { return c.window == 0 || P + i - key < c.window; };
          for (int64_t j = 0; j < P; ++j) {
            if (!in_window(j)) continue;
            double s = 0;
            for (int64_t d = 0; d < D; ++d) s += q(d) * prefix_k.data<float>()[j * cfg.kv_width() + g * D + d];
            score.push_back(s * cfg.scale);
            values.push_back(prefix_v.data<float>() + j * cfg.kv_width() + g * D);
          }
          for (int64_t j = 0; j < T; ++j) {
            if (key_mask.defined() && key_mask.data<int32_t>()[b * T + j] == 0) continue;
            if (c.mask == ops::AttentionMask::kCausal && j > i) continue;
            if (!in_window(P + j)) continue;
            double s = 0;
            for (int64_t d = 0; d < D; ++d) s += q(d) * x[(b * T + j) * W + cfg.q_width() + g * D + d];
            score.push_back(s * cfg.scale);
            values.push_back(x + (b * T + j) * W + cfg.q_width() + cfg.kv_width() + g * D);
          }
          if (score.empty()) continue;  // sees no key: zero output
          double mx = -1e300, z = 0;
          for (double s : score) mx = std::max(mx, s);
          for (double& s : score) z += (s = std::exp(s - mx));
          for (size_t k = 0; k < score.size(); ++k)
            for (int64_t d = 0; d < D; ++d)
              result[size_t((b * T + i) * cfg.q_width() + h * D + d)] += score[k] / z * values[k][d];
        }
    return result;
  }

  ops::AttentionConfig cfg;
  Tensor qkv, prefix_k, prefix_v, key_mask, out, probs;
};

TEST_P(Attention, ForwardMatchesNaiveLoop) {
  ops::attention_forward(out, probs, qkv, prefix_k, prefix_v, key_mask, cfg);
  const std::vector<double> expected = naive();
  for (size_t i = 0; i < expected.size(); ++i) ASSERT_NEAR(out.data<float>()[i], expected[i], 1e-5) << "at " << i;
}

TEST_P(Attention, BackwardMatchesFiniteDifferences) {
  const Case c = GetParam();
  Tensor r = random_tensor(out.shape(), 9);
  auto loss = [&] {
    ops::attention_forward(out, probs, qkv, prefix_k, prefix_v, key_mask, cfg);
    return weighted_sum(out, r);
  };
  loss();
  Tensor dqkv = Tensor::zeros(qkv.shape(), DType::kF32);
  Tensor dscores = Tensor::empty(probs.shape(), DType::kF32);
  Tensor dk = c.prefix ? Tensor::zeros(prefix_k.shape(), DType::kF32) : Tensor();
  Tensor dv = c.prefix ? Tensor::zeros(prefix_v.shape(), DType::kF32) : Tensor();
  ops::attention_backward(dqkv, dk, dv, dscores, r, out, qkv, probs, prefix_k, prefix_v, cfg);
  expect_gradient("dqkv", qkv, dqkv, loss, 1e-2f, 1e-2, 2e-3);
  if (c.prefix) {
    expect_gradient("dprefix_k", prefix_k, dk, loss, 1e-2f, 1e-2, 2e-3);
    expect_gradient("dprefix_v", prefix_v, dv, loss, 1e-2f, 1e-2, 2e-3);
  }
}

TEST(AttentionWindow, NeedsCausalMasking) {
  ops::AttentionConfig cfg{2, 2, 3, ops::AttentionMask::kBidirectional, 1.0f};
  cfg.window = 4;
  const Tensor qkv = Tensor::zeros({1, 5, cfg.qkv_width()}, DType::kF32);
  testing::expect_error([&] { ops::attention_shape(qkv, Tensor(), cfg); }, {"sliding window 4", "causal"});
}

using M = ops::AttentionMask;
INSTANTIATE_TEST_SUITE_P(Configs, Attention,
                         ::testing::Values(Case{2, 2, 0, M::kBidirectional, false}, Case{2, 2, 0, M::kCausal, true},
                                           Case{2, 2, 3, M::kBidirectional, true}, Case{2, 2, 3, M::kCausal, false},
                                           Case{4, 2, 2, M::kCausal, true}, Case{4, 1, 2, M::kBidirectional, true},
                                           Case{4, 2, 3, M::kCausal, true, 150}, Case{2, 2, 0, M::kCausal, false, 129},
                                           // Sliding windows: inside one query block, hiding the prefix
                                           // from late queries, and across CPU query blocks (whose GEMMs
                                           // start at the first block row's window).
                                           Case{2, 2, 0, M::kCausal, true, 7, 3}, Case{4, 2, 3, M::kCausal, true, 9, 5},
                                           Case{2, 1, 2, M::kCausal, true, 6, 1},  // padding sees no key
                                           Case{4, 2, 3, M::kCausal, true, 150, 70},
                                           // The second query block's window starts inside the prefix.
                                           Case{2, 1, 3, M::kCausal, false, 150, 66}));

}  // namespace
}  // namespace ptune
