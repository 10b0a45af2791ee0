// Every op's backward against finite differences of its forward.
#include <gtest/gtest.h>
#include <omp.h>

#include <vector>

#include "framework/ops/activation.h"
#include "framework/ops/cross_entropy.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/embedding.h"
#include "framework/ops/layernorm.h"
#include "framework/ops/linear.h"
#include "expect_error.h"
#include "gradcheck.h"

namespace ptune {
namespace {

using testing::expect_gradient;
using testing::random_tensor;
using testing::weighted_sum;

TEST(Linear, BackwardMatchesFiniteDifferences) {
  const int64_t n = 5, in = 7, out = 4;
  Tensor x = random_tensor({n, in}, 1), w = random_tensor({out, in}, 2), b = random_tensor({out}, 3);
  Tensor r = random_tensor({n, out}, 4), y = Tensor::empty({n, out}, DType::kF32);
  auto loss = [&] {
    ops::linear_forward(y, x, w, b);
    return weighted_sum(y, r);
  };
  Tensor dx = Tensor::zeros(x.shape(), DType::kF32), dw = Tensor::zeros(w.shape(), DType::kF32),
         db = Tensor::zeros(b.shape(), DType::kF32);
  ops::linear_backward_input(dx, r, w);
  ops::linear_backward_params(dw, db, r, x);
  expect_gradient("dx", x, dx, loss);
  expect_gradient("dw", w, dw, loss);
  expect_gradient("db", b, db, loss);
}

TEST(Linear, ForwardMatchesNaiveProduct) {
  Tensor x = random_tensor({3, 5}, 5), w = random_tensor({2, 5}, 6), y = Tensor::empty({3, 2}, DType::kF32);
  ops::linear_forward(y, x, w, Tensor());
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) {
      double s = 0;
      for (int k = 0; k < 5; ++k) s += double(x.data<float>()[i * 5 + k]) * w.data<float>()[j * 5 + k];
      EXPECT_NEAR(y.data<float>()[i * 2 + j], s, 1e-5);
    }
}

TEST(Embedding, ForwardAddAndBackward) {
  Tensor table = random_tensor({6, 3}, 7);
  Tensor ids = Tensor::empty({4}, DType::kI32);
  const int32_t id_values[4] = {5, 0, 5, 2};
  for (int i = 0; i < 4; ++i) ids.data<int32_t>()[i] = id_values[i];
  Tensor out = Tensor::empty({4, 3}, DType::kF32), r = random_tensor({4, 3}, 8);
  auto loss = [&] {
    out.zero_();
    ops::embedding_add(out, ids, table);
    return weighted_sum(out, r);
  };
  Tensor dtable = Tensor::zeros(table.shape(), DType::kF32);
  ops::embedding_backward(dtable, r, ids);
  expect_gradient("dtable", table, dtable, loss);
  ops::embedding_forward(out, ids, table);
  EXPECT_EQ(out.data<float>()[3], table.data<float>()[0]);
  ids.data<int32_t>()[1] = 6;
  EXPECT_THROW(ops::embedding_forward(out, ids, table), Error);
}

// Gathering rows of activations (embedding_forward from a (R, C) tensor)
// has scatter_add_rows as its gradient; untouched rows keep their values,
// and a repeated or out-of-range row is refused (it would race on a GPU).
TEST(Embedding, ScatterAddRowsIsTheGathersGradient) {
  Tensor x = random_tensor({7, 3}, 17), r = random_tensor({3, 3}, 18);
  Tensor rows = Tensor::empty({3}, DType::kI32);
  const int32_t row_values[3] = {6, 1, 3};
  for (int i = 0; i < 3; ++i) rows.data<int32_t>()[i] = row_values[i];
  Tensor picked = Tensor::empty({3, 3}, DType::kF32);
  auto loss = [&] {
    ops::embedding_forward(picked, rows, x);
    return weighted_sum(picked, r);
  };
  Tensor dx = random_tensor({7, 3}, 19);
  const Tensor before = dx.clone();
  ops::scatter_add_rows(dx, r, rows);
  Tensor added = dx.clone();  // the gradient: dx − what it held
  for (int64_t i = 0; i < added.numel(); ++i) added.data<float>()[i] -= before.data<float>()[i];
  expect_gradient("dx", x, added, loss);
  EXPECT_EQ(dx.data<float>()[0], before.data<float>()[0]);  // row 0 is not gathered
  rows.data<int32_t>()[2] = 6;
  EXPECT_THROW(ops::scatter_add_rows(dx, r, rows), Error);
  rows.data<int32_t>()[2] = 7;
  EXPECT_THROW(ops::scatter_add_rows(dx, r, rows), Error);
}

TEST(Embedding, PromptRowsReplaceNegativeIds) {
  Tensor table = random_tensor({6, 3}, 61), prompt = random_tensor({2, 3}, 62);
  Tensor ids = Tensor::empty({5}, DType::kI32);
  const int32_t id_values[5] = {-1, 4, -2, -1, 0};
  for (int i = 0; i < 5; ++i) ids.data<int32_t>()[i] = id_values[i];
  Tensor out = Tensor::empty({5, 3}, DType::kF32), r = random_tensor({5, 3}, 63);
  auto loss = [&] {
    ops::prompt_embedding_forward(out, ids, table, prompt);
    return weighted_sum(out, r);
  };
  loss();
  EXPECT_EQ(out.data<float>()[2 * 3 + 1], prompt.data<float>()[1 * 3 + 1]);
  EXPECT_EQ(out.data<float>()[1 * 3 + 2], table.data<float>()[4 * 3 + 2]);
  Tensor dprompt = Tensor::zeros(prompt.shape(), DType::kF32);
  ops::prompt_embedding_backward(dprompt, r, ids);
  expect_gradient("dprompt", prompt, dprompt, loss);
  // Gemma's scaled word rows: table rows times the scale, prompt rows as they are.
  ops::prompt_embedding_forward(out, ids, table, prompt, 5.5f);
  EXPECT_EQ(out.data<float>()[1 * 3 + 2], table.data<float>()[4 * 3 + 2] * 5.5f);
  EXPECT_EQ(out.data<float>()[2 * 3 + 1], prompt.data<float>()[1 * 3 + 1]);
  ids.data<int32_t>()[0] = -3;
  EXPECT_THROW(ops::prompt_embedding_forward(out, ids, table, prompt), Error);
}

class Norm : public ::testing::TestWithParam<ops::NormKind> {};

TEST_P(Norm, BackwardMatchesFiniteDifferences) {
  const ops::NormKind kind = GetParam();
  const bool layer = kind == ops::NormKind::kLayerNorm;
  const int64_t n = 4, c = 8;
  Tensor x = random_tensor({n, c}, 11, 2.0f), w = random_tensor({c}, 12), b = layer ? random_tensor({c}, 13) : Tensor();
  Tensor y = Tensor::empty({n, c}, DType::kF32), mean = Tensor::empty({n}, DType::kF32),
         rstd = Tensor::empty({n}, DType::kF32), r = random_tensor({n, c}, 14);
  Tensor m = layer ? mean : Tensor();
  auto loss = [&] {
    ops::norm_forward(kind, y, m, rstd, x, w, b, 1e-5f);
    return weighted_sum(y, r);
  };
  loss();
  Tensor dx = Tensor::zeros(x.shape(), DType::kF32), dw = Tensor::zeros(w.shape(), DType::kF32),
         db = layer ? Tensor::zeros(b.shape(), DType::kF32) : Tensor();
  ops::norm_backward(kind, dx, dw, db, r, x, w, m, rstd);
  expect_gradient("dx", x, dx, loss, 1e-2f, 2e-2, 2e-3);
  expect_gradient("dw", w, dw, loss);
  if (layer) expect_gradient("db", b, db, loss);
}

// The fused residual entry the model uses is, on the CPU, exactly the two
// ops it replaces: sum, y, mean and rstd bit for bit, with and without bias.
TEST_P(Norm, ResidualNormEqualsAddThenNorm) {
  const ops::NormKind kind = GetParam();
  const bool layer = kind == ops::NormKind::kLayerNorm;
  const int64_t n = 5, c = 24;
  const Tensor a = random_tensor({n, c}, 21), residual = random_tensor({n, c}, 22, 3.0f), w = random_tensor({c}, 23);
  for (const Tensor& b : {random_tensor({c}, 24), Tensor()}) {
    auto run = [&](bool fused) {
      Tensor y = Tensor::empty({n, c}, DType::kF32), sum = Tensor::empty({n, c}, DType::kF32),
             mean = layer ? Tensor::empty({n}, DType::kF32) : Tensor(), rstd = Tensor::empty({n}, DType::kF32);
      if (fused) {
        ops::residual_norm_forward(kind, y, sum, mean, rstd, a, residual, w, b, 1e-5f);
      } else {
        ops::add_forward(sum, residual, a);
        ops::norm_forward(kind, y, mean, rstd, sum, w, b, 1e-5f);
      }
      return std::vector<Tensor>{y, sum, mean, rstd};
    };
    const std::vector<Tensor> fused = run(true), unfused = run(false);
    for (size_t t = 0; t < fused.size(); ++t) {
      if (!fused[t].defined()) continue;
      for (int64_t i = 0; i < fused[t].numel(); ++i)
        ASSERT_EQ(fused[t].data<float>()[i], unfused[t].data<float>()[i]) << "tensor " << t << " bias " << b.defined();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, Norm, ::testing::Values(ops::NormKind::kLayerNorm, ops::NormKind::kRmsNorm));

// Qwen3's per-head q/k norm, in place in the fused projections' columns:
// rows (N, W) = 3 × 40, 3 heads of 8 from column 5 (columns 29..39 and
// 0..4 are someone else's and stay as they were).
constexpr int64_t kHeadN = 3, kHeadW = 40, kHeadCol = 5, kHeads = 3, kHeadD = 8;

// The same numbers as copying the heads out, norm_forward(kRmsNorm) on
// the (N·heads, D) rows and copying them back.
TEST(HeadRmsNorm, EqualsTheNormOfTheCopiedOutHeads) {
  const Tensor x = random_tensor({kHeadN, kHeadW}, 31, 2.0f), w = random_tensor({kHeadD}, 32);
  Tensor y = x.clone(), saved = Tensor::empty({kHeadN * kHeads, kHeadD}, DType::kF32),
         rstd = Tensor::empty({kHeadN * kHeads}, DType::kF32);
  ops::head_rms_norm_forward(y, kHeadCol, saved, rstd, w, 1e-6f);

  Tensor heads = Tensor::empty({kHeadN * kHeads, kHeadD}, DType::kF32), want = heads.clone(),
         want_rstd = rstd.clone();
  ops::copy_columns(heads.view({kHeadN, kHeads * kHeadD}), 0, x, kHeadCol, kHeads * kHeadD, false);
  ops::norm_forward(ops::NormKind::kRmsNorm, want, Tensor(), want_rstd, heads, w, Tensor(), 1e-6f);
  for (int64_t i = 0; i < heads.numel(); ++i) {
    ASSERT_EQ(saved.data<float>()[i], heads.data<float>()[i]) << i;
    const int64_t row = i / (kHeads * kHeadD), c = kHeadCol + i % (kHeads * kHeadD);
    ASSERT_EQ(y.data<float>()[row * kHeadW + c], want.data<float>()[i]) << i;
  }
  for (int64_t k = 0; k < rstd.numel(); ++k) ASSERT_EQ(rstd.data<float>()[k], want_rstd.data<float>()[k]) << k;
  for (int64_t row = 0; row < kHeadN; ++row)
    for (int64_t c = 0; c < kHeadW; ++c)
      if (c < kHeadCol || c >= kHeadCol + kHeads * kHeadD)
        ASSERT_EQ(y.data<float>()[row * kHeadW + c], x.data<float>()[row * kHeadW + c]) << row << "," << c;
}

// Backward turns ∂L/∂y in place into ∂L/∂x: over the whole (N, W) buffer,
// the gradient of Σ y·r (the untouched columns pass r through).
TEST(HeadRmsNorm, BackwardMatchesFiniteDifferences) {
  Tensor x = random_tensor({kHeadN, kHeadW}, 41, 2.0f), w = random_tensor({kHeadD}, 42),
         r = random_tensor({kHeadN, kHeadW}, 43);
  Tensor y = x.clone(), saved = Tensor::empty({kHeadN * kHeads, kHeadD}, DType::kF32),
         rstd = Tensor::empty({kHeadN * kHeads}, DType::kF32);
  auto loss = [&] {
    y.copy_from(x);
    ops::head_rms_norm_forward(y, kHeadCol, saved, rstd, w, 1e-6f);
    return weighted_sum(y, r);
  };
  loss();
  Tensor dx = r.clone();
  ops::head_rms_norm_backward(dx, kHeadCol, saved, rstd, w);
  expect_gradient("dx", x, dx, loss, 1e-2f, 2e-2, 2e-3);
}

TEST(HeadRmsNorm, ShapeErrorsNameTheOp) {
  Tensor x = random_tensor({kHeadN, kHeadW}, 51), w = random_tensor({kHeadD}, 52);
  Tensor saved = Tensor::empty({kHeadN * kHeads, kHeadD}, DType::kF32), rstd = Tensor::empty({kHeadN * kHeads}, DType::kF32);
  testing::expect_error([&] { ops::head_rms_norm_forward(x, kHeadW - 8, saved, rstd, w, 1e-6f); },
                        {"head_rms_norm_forward", "overrun width 40"});
  testing::expect_error([&] { ops::head_rms_norm_backward(x, 0, saved, rstd, random_tensor({4}, 53)); },
                        {"head_rms_norm_backward", "w (4)"});
}

class Act : public ::testing::TestWithParam<ops::Activation> {};

TEST_P(Act, BackwardMatchesFiniteDifferences) {
  Tensor x = random_tensor({50}, 21, 2.0f), y = Tensor::empty({50}, DType::kF32), r = random_tensor({50}, 22);
  auto loss = [&] {
    ops::activation_forward(GetParam(), y, x);
    return weighted_sum(y, r);
  };
  Tensor dx = Tensor::zeros(x.shape(), DType::kF32);
  ops::activation_backward(GetParam(), dx, r, x);
  expect_gradient("dx", x, dx, loss, 1e-3f, 1e-2, 2e-3);
}

INSTANTIATE_TEST_SUITE_P(Kinds, Act,
                         ::testing::Values(ops::Activation::kGeluTanh, ops::Activation::kGeluErf, ops::Activation::kTanh,
                                           ops::Activation::kSilu, ops::Activation::kRelu));

TEST(Activation, GeluValuesMatchTorch) {
  // Printed by torch 2.15: F.gelu(torch.tensor([-1.5, 0.3, 2.0])) and approximate="tanh".
  Tensor x = Tensor::empty({3}, DType::kF32), y = Tensor::empty({3}, DType::kF32);
  const float xs[3] = {-1.5f, 0.3f, 2.0f};
  for (int i = 0; i < 3; ++i) x.data<float>()[i] = xs[i];
  ops::activation_forward(ops::Activation::kGeluErf, y, x);
  EXPECT_NEAR(y.data<float>()[0], -0.10021086f, 1e-6);
  EXPECT_NEAR(y.data<float>()[1], 0.18537344f, 1e-6);
  EXPECT_NEAR(y.data<float>()[2], 1.95449972f, 1e-6);
  ops::activation_forward(ops::Activation::kGeluTanh, y, x);
  EXPECT_NEAR(y.data<float>()[0], -0.10042843f, 1e-6);
  EXPECT_NEAR(y.data<float>()[1], 0.18537094f, 1e-6);
  EXPECT_NEAR(y.data<float>()[2], 1.95459771f, 1e-6);
  EXPECT_THROW(ops::activation_from_name("mish"), Error);
}

TEST(CrossEntropy, LossAndBackwardWithIgnoredRows) {
  const int64_t n = 5, v = 7;
  Tensor logits = random_tensor({n, v}, 31, 3.0f), targets = Tensor::empty({n}, DType::kI32);
  const int32_t t[5] = {3, ops::kIgnoreIndex, 0, 6, ops::kIgnoreIndex};
  for (int i = 0; i < 5; ++i) targets.data<int32_t>()[i] = t[i];
  Tensor losses = Tensor::empty({n}, DType::kF32), lse = Tensor::empty({n}, DType::kF32);
  auto loss = [&] {
    ops::cross_entropy_forward(losses, lse, logits, targets);
    double s = 0;
    for (int i = 0; i < n; ++i) s += losses.data<float>()[i];
    return s / 3.0;
  };
  EXPECT_EQ(ops::cross_entropy_forward(losses, lse, logits, targets), 3);
  EXPECT_EQ(losses.data<float>()[1], 0.0f);
  // Row 0 by hand.
  double z = 0;
  for (int j = 0; j < v; ++j) z += std::exp(double(logits.data<float>()[j]));
  EXPECT_NEAR(losses.data<float>()[0], std::log(z) - logits.data<float>()[3], 1e-5);
  Tensor dlogits = Tensor::zeros(logits.shape(), DType::kF32);
  ops::cross_entropy_backward(dlogits, logits, lse, targets, 1.0f / 3.0f);
  expect_gradient("dlogits", logits, dlogits, loss, 1e-2f, 1e-2, 1e-4);
  targets.data<int32_t>()[0] = 7;
  EXPECT_THROW(ops::cross_entropy_forward(losses, lse, logits, targets), Error);
}

TEST(Dropout, MaskIsReproducibleAndBackwardUsesTheSameMask) {
  const int64_t n = 100000;
  const float p = 0.3f;
  Tensor x = random_tensor({n}, 41), y = Tensor::empty({n}, DType::kF32), y1 = Tensor::empty({n}, DType::kF32);
  ops::dropout_forward(y, x, p, 7, 1000);
  omp_set_num_threads(1);
  ops::dropout_forward(y1, x, p, 7, 1000);
  omp_set_num_threads(2);
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(y.data<float>()[i], y1.data<float>()[i]) << "thread count changed the mask at " << i;
    dropped += y.data<float>()[i] == 0.0f;
  }
  EXPECT_NEAR(double(dropped) / double(n), p, 0.01);
  // Backward with dy = 1 gives mask / (1 - p), so dx ⊙ x = y.
  Tensor ones = Tensor::empty({n}, DType::kF32);
  for (int64_t i = 0; i < n; ++i) ones.data<float>()[i] = 1.0f;
  Tensor dx = Tensor::zeros({n}, DType::kF32);
  ops::dropout_backward(dx, ones, p, 7, 1000);
  for (int64_t i = 0; i < n; ++i) ASSERT_FLOAT_EQ(dx.data<float>()[i] * x.data<float>()[i], y.data<float>()[i]);
}

TEST(Elementwise, AddAccumulateScale) {
  Tensor a = random_tensor({10}, 51), b = random_tensor({10}, 52), y = Tensor::empty({10}, DType::kF32);
  ops::add_forward(y, a, b);
  ops::accumulate(y, a);
  ops::scale_(y, 0.5f);
  for (int i = 0; i < 10; ++i)
    EXPECT_FLOAT_EQ(y.data<float>()[i], 0.5f * (2 * a.data<float>()[i] + b.data<float>()[i]));
}

}  // namespace
}  // namespace ptune

namespace ptune {
namespace {

// copy_columns moves column blocks and, accumulating, adds them back: the
// prefix split and its gradient gather. convert rounds f32 to bf16 as
// Tensor::to does.
TEST(CopyColumns, SplitThenGatherIsTheIdentityAndConvertRounds) {
  const Tensor src = testing::random_tensor({3, 10}, 1);
  Tensor a = Tensor::empty({3, 4}, DType::kF32), b = Tensor::empty({3, 6}, DType::kF32);
  ops::copy_columns(a, 0, src, 0, 4, false);
  ops::copy_columns(b, 0, src, 4, 6, false);
  for (int64_t r = 0; r < 3; ++r) {
    EXPECT_EQ(a.data<float>()[r * 4 + 3], src.data<float>()[r * 10 + 3]);
    EXPECT_EQ(b.data<float>()[r * 6 + 0], src.data<float>()[r * 10 + 4]);
  }
  Tensor back = Tensor::zeros({3, 10}, DType::kF32);
  ops::copy_columns(back, 4, b, 0, 6, true);
  ops::copy_columns(back, 0, a, 0, 4, true);
  ops::copy_columns(back, 0, a, 0, 4, true);  // accumulates: columns 0..3 doubled
  for (int64_t i = 0; i < 30; ++i)
    EXPECT_EQ(back.data<float>()[i], (i % 10 < 4 ? 2.0f : 1.0f) * src.data<float>()[i]) << i;

  Tensor half = Tensor::empty({3, 10}, DType::kBF16), wide = Tensor::empty({3, 10}, DType::kF32);
  ops::convert(half, src);
  ops::convert(wide, half);
  const Tensor want = src.to(DType::kBF16).to(DType::kF32);
  for (int64_t i = 0; i < 30; ++i) EXPECT_EQ(wide.data<float>()[i], want.data<float>()[i]) << i;
  EXPECT_THROW(ops::copy_columns(a, 1, src, 0, 4, false), Error);  // past a's 4 columns
}

}  // namespace
}  // namespace ptune
