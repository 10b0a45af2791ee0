// GradMode::kWrite against the default kAdd: a backward op that writes its
// gradient into a buffer of garbage (NaN, as recycled arena memory may hold)
// must give exactly what kAdd gives into a zeroed buffer (0 + v is v), and
// must leave no element of the buffer unwritten.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include "framework/ops/attention.h"
#include "framework/ops/linear.h"
#include "framework/ops/swiglu.h"
#include "gradcheck.h"

namespace ptune {
namespace {

using testing::random_tensor;

Tensor nan_tensor(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::kF32);
  std::fill_n(t.data<float>(), t.numel(), std::numeric_limits<float>::quiet_NaN());
  return t;
}

// Element for element equal (== : +0 and −0 agree, NaN never does).
void expect_equal(const Tensor& got, const Tensor& want, const char* what) {
  ASSERT_EQ(got.numel(), want.numel()) << what;
  int64_t differ = 0;
  for (int64_t i = 0; i < got.numel(); ++i) differ += !(got.data<float>()[i] == want.data<float>()[i]);
  EXPECT_EQ(differ, 0) << what << ": " << differ << " of " << got.numel() << " elements differ";
}

TEST(GradMode, LinearBackwardInputWriteEqualsAddIntoZeros) {
  // (B, T, out) · (out, in): rows and widths that fit no SIMD width.
  const int64_t B = 3, T = 7, in = 13, out = 9;
  Tensor dy = random_tensor({B, T, out}, 31), w = random_tensor({out, in}, 32);
  Tensor added = Tensor::zeros({B, T, in}, DType::kF32), written = nan_tensor({B, T, in});
  ops::linear_backward_input(added, dy, w);
  ops::linear_backward_input(written, dy, w, ops::GradMode::kWrite);
  expect_equal(written, added, "dx");

  // kAdd still accumulates: a second kAdd doubles what one kWrite gives.
  ops::linear_backward_input(added, dy, w, ops::GradMode::kAdd);
  for (int64_t i = 0; i < written.numel(); ++i)
    EXPECT_NEAR(added.data<float>()[i], 2.0f * written.data<float>()[i], 1e-5f) << i;
}

TEST(GradMode, GatedBackwardWriteEqualsAddIntoZeros) {
  // SiLU is the fused loop; GELU (GeGLU) the composed path that zeroes the
  // gate half itself before activation_backward accumulates into it.
  for (ops::Activation f : {ops::Activation::kSilu, ops::Activation::kGeluTanh}) {
    const int64_t N = 5, I = 11;
    Tensor x = random_tensor({N, 2 * I}, 33), dy = random_tensor({N, I}, 34);
    Tensor added = Tensor::zeros({N, 2 * I}, DType::kF32), written = nan_tensor({N, 2 * I});
    ops::gated_backward(f, added, dy, x);
    ops::gated_backward(f, written, dy, x, ops::GradMode::kWrite);
    expect_equal(written, added, f == ops::Activation::kSilu ? "silu dx" : "gelu dx");
  }
}

TEST(GradMode, AttentionBackwardWriteEqualsAddIntoZeros) {
  // GQA with a prefix, causal, the second sequence ending in padding (keys
  // that get no gradient must still be written).
  const int64_t B = 2, T = 6, P = 3;
  ops::AttentionConfig cfg{4, 2, 5, ops::AttentionMask::kCausal, 0.4f};
  Tensor qkv = random_tensor({B, T, cfg.qkv_width()}, 35);
  Tensor pk = random_tensor({P, cfg.kv_width()}, 36), pv = random_tensor({P, cfg.kv_width()}, 37);
  Tensor mask = Tensor::empty({B, T}, DType::kI32);
  for (int64_t i = 0; i < B * T; ++i) mask.data<int32_t>()[i] = i < B * T - 2;
  Tensor out = Tensor::empty({B, T, cfg.q_width()}, DType::kF32);
  Tensor probs = Tensor::empty(ops::attention_saved_shape(Device::cpu(), B, T, P, cfg), DType::kF32);
  ops::attention_forward(out, probs, qkv, pk, pv, mask, cfg);
  Tensor dout = random_tensor({B, T, cfg.q_width()}, 38), dscores = Tensor::empty(probs.shape(), DType::kF32);
  Tensor added = Tensor::zeros(qkv.shape(), DType::kF32), written = nan_tensor(qkv.shape());
  ops::attention_backward(added, Tensor(), Tensor(), dscores, dout, out, qkv, probs, pk, pv, cfg);
  ops::attention_backward(written, Tensor(), Tensor(), dscores, dout, out, qkv, probs, pk, pv, cfg,
                          ops::GradMode::kWrite);
  expect_equal(written, added, "dqkv");
}

}  // namespace
}  // namespace ptune
