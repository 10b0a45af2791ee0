// The LLaMA-family ops on the GPU against the CPU reference: RoPE on the
// fused qkv (GQA shapes, positions with an offset, both directions, value
// columns untouched, Phi-3's partial rotation with LongRoPE's scale), Qwen3's per-head q/k RMSNorm, the gated MLP activation (forward writes, backward
// accumulates), the cuBLASLt plan cache their projections go through, and
// the backward ops' GradMode::kWrite (the model's first writer of a buffer).
// f32 and bf16; tolerances in cuda_test_util.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "cuda/cuda_test_util.h"
#include "framework/core/stream.h"  // cuda_device_count, used by SKIP_WITHOUT_GPU
#include "framework/ops/linear.h"
#include "framework/ops/layernorm.h"
#include "framework/ops/rope.h"
#include "framework/ops/swiglu.h"

namespace ptune {
namespace {

using namespace cuda_test;  // NOLINT: the shared helpers

class CudaLlamaOps : public CudaOps {};

struct RopeShape {
  int64_t b, t, h, kvh, d;
  int32_t offset;    // first position: a continued sequence, large angles
  int64_t r = 0;     // rotated width (0: d)
  float scale = 1;   // LongRoPE's attention factor on cos and sin
};

// inv_freq (R/2) f32 as LLaMA builds it, θ = 10000.
Tensor llama_inv_freq(int64_t r) {
  Tensor inv = Tensor::empty({r / 2}, DType::kF32);
  for (int64_t i = 0; i < r / 2; ++i) inv.data<float>()[i] = std::pow(10000.0f, -float(2 * i) / float(r));
  return inv;
}

// position_ids (B, T) i32: offset + t, each batch row shifted by 3b (left padding).
Tensor positions(const RopeShape& s) {
  Tensor pos = Tensor::empty({s.b, s.t}, DType::kI32);
  for (int64_t b = 0; b < s.b; ++b)
    for (int64_t t = 0; t < s.t; ++t) pos.data<int32_t>()[b * s.t + t] = s.offset + int32_t(t + 3 * b);
  return pos;
}

// The value columns [q_width + kv_width, qkv_width) of gpu (B, T, W) equal
// before's bit for bit.
void expect_values_untouched(const Tensor& gpu, const Tensor& before, const ops::AttentionConfig& cfg) {
  Tensor got = to_cpu_f32(gpu);
  const int64_t W = cfg.qkv_width(), rows = got.numel() / W;
  int64_t changed = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = cfg.q_width() + cfg.kv_width(); c < W; ++c)
      changed += got.data<float>()[r * W + c] != before.data<float>()[r * W + c];  // bit-exact: never written
  EXPECT_EQ(changed, 0) << "value columns were modified";
}

TEST_P(CudaLlamaOps, RopeMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const RopeShape shapes[] = {
      {2, 9, 4, 2, 16, 0},     // GQA, D = 16
      {3, 17, 4, 2, 64, 977},  // GQA, D = 64, offset positions (angles up to ~1000 rad)
      {1, 5, 4, 4, 64, 4090},  // MHA, near LLaMA-2's 4096 context
      {2, 9, 4, 2, 96, 5, 96, 1.19f},   // Phi-3's head dim with LongRoPE's scale
      {2, 9, 4, 2, 128, 0, 96},         // Phi-4-mini: 96 of 128 columns rotate
      {2, 5, 6, 3, 32, 3},              // 9 rotated heads: groups of 4, 4 and 1 a thread
  };
  for (const RopeShape& s : shapes) {
    ops::AttentionConfig cfg{s.h, s.kvh, s.d, ops::AttentionMask::kCausal, 1.0f / std::sqrt(float(s.d))};
    Tensor pos = positions(s), inv = llama_inv_freq(s.r ? s.r : s.d);
    Tensor gpos = pos.to(kGpu), ginv = inv.to(kGpu);
    const Shape shape{s.b, s.t, cfg.qkv_width()};
    const std::string where = "D=" + std::to_string(s.d) + " heads=" + std::to_string(s.h + s.kvh) +
                              " offset=" + std::to_string(s.offset);

    Tensor x = in(shape);
    Tensor y = x.clone(), gy = to_gpu(x, dt());
    ops::rope_forward(y, pos, inv, cfg, s.scale);
    ops::rope_forward(gy, gpos, ginv, cfg, s.scale);
    EXPECT_CLOSE(gy, y, tol()) << where;
    expect_values_untouched(gy, x, cfg);

    // Backward is the inverse rotation: it brings the GPU result back to x.
    if (s.scale == 1.0f) {
      ops::rope_backward(gy, gpos, ginv, cfg);
      EXPECT_CLOSE(gy, x, tol()) << where << " (round trip)";
    }

    Tensor dy = in(shape);
    Tensor dx = dy.clone(), gdx = to_gpu(dy, dt());
    ops::rope_backward(dx, pos, inv, cfg, s.scale);
    ops::rope_backward(gdx, gpos, ginv, cfg, s.scale);
    EXPECT_CLOSE(gdx, dx, tol()) << where << " (backward)";
    expect_values_untouched(gdx, dy, cfg);
  }
}

TEST_P(CudaLlamaOps, GatedActivationMatchesCpu) {
  SKIP_WITHOUT_GPU();
  // SiLU is the fused kernel; GELU (GeGLU) takes the composed path.
  for (ops::Activation f : {ops::Activation::kSilu, ops::Activation::kGeluTanh}) {
    const int64_t B = 3, T = 7, I = 75;  // I not a multiple of the warp: rows straddle warps
    Tensor x = in({B, T, 2 * I}), dy = in({B, T, I}), dx = in({B, T, 2 * I});
    Tensor gx = to_gpu(x, dt()), gdy = to_gpu(dy, dt()), gdx = to_gpu(dx, dt());

    Tensor y = Tensor::empty({B, T, I}, DType::kF32), gy = to_gpu(randn({B, T, I}), dt());  // poisoned
    ops::gated_forward(f, y, x);
    ops::gated_forward(f, gy, gx);
    EXPECT_CLOSE(gy, y, tol()) << int(f);

    ops::gated_backward(f, dx, dy, x);  // accumulates onto the random dx on both sides
    ops::gated_backward(f, gdx, gdy, gx);
    EXPECT_CLOSE(gdx, dx, tol()) << int(f);
  }
}

// Qwen3's per-head q/k norm, in place in qkv's columns: the q heads (from
// column 0) and the k heads (after them) of a GQA row, with head dims that
// are under, at and over a warp's 32 lanes (D = 12, 64, 128); the other
// columns (v) must come back bit for bit.
TEST_P(CudaLlamaOps, HeadRmsNormMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const int64_t D : {12, 64, 128}) {
    const int64_t N = 37, H = 4, KVH = 2, W = (H + 2 * KVH) * D;
    for (const auto& [col, heads] : {std::pair<int64_t, int64_t>{0, H}, {H * D, KVH}}) {
      const std::string where = "D=" + std::to_string(D) + " col=" + std::to_string(col);
      const Tensor x = in({N, W}), w = in({D});
      Tensor y = x.clone(), saved = Tensor::empty({N * heads, D}, DType::kF32),
             rstd = Tensor::empty({N * heads}, DType::kF32);
      ops::head_rms_norm_forward(y, col, saved, rstd, w, 1e-6f);
      Tensor gy = to_gpu(x, dt()), gsaved = nan_gpu({N * heads, D}, dt()), grstd = nan_gpu({N * heads}, DType::kF32);
      ops::head_rms_norm_forward(gy, col, gsaved, grstd, to_gpu(w, dt()), 1e-6f);
      EXPECT_CLOSE(gy, y, tol()) << where;
      EXPECT_CLOSE(gsaved, saved, tol()) << where;
      EXPECT_CLOSE(grstd, rstd, tol()) << where;
      const Tensor got = to_cpu_f32(gy);
      int64_t changed = 0;
      for (int64_t r = 0; r < N; ++r)
        for (int64_t c = 0; c < W; ++c)
          if (c < col || c >= col + heads * D) changed += got.data<float>()[r * W + c] != x.data<float>()[r * W + c];
      EXPECT_EQ(changed, 0) << where << ": columns outside the heads were written";

      Tensor dy = in({N, W}), dx = dy.clone(), gdx = to_gpu(dy, dt());
      ops::head_rms_norm_backward(dx, col, saved, rstd, w);
      ops::head_rms_norm_backward(gdx, col, gsaved, grstd, to_gpu(w, dt()));
      EXPECT_CLOSE(gdx, dx, tol()) << where << " (backward)";
    }
  }
}

// The projections of these models go through linear_cuda.cu's cuBLASLt
// plan cache, one plan per shape: a second call of the same shape with other
// buffers and another bias must use those, and a row view whose address is
// only 16- or 32-byte aligned must get a plan that allows it.
TEST_P(CudaLlamaOps, LinearPlanReusedAcrossBuffers) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 13, in_f = 40, out_f = 24;
  Tensor w = in({out_f, in_f}), gw = to_gpu(w, dt());
  // All buffers alive at once, so the caching allocator cannot hand the
  // second call the first call's addresses.
  Tensor x[2] = {in({n, in_f}), in({n, in_f})}, b[2] = {in({out_f}), in({out_f})};
  Tensor gx[2] = {to_gpu(x[0], dt()), to_gpu(x[1], dt())}, gb[2] = {to_gpu(b[0], dt()), to_gpu(b[1], dt())};
  Tensor gy[2] = {to_gpu(randn({n, out_f}), dt()), to_gpu(randn({n, out_f}), dt())};
  for (int call = 0; call < 2; ++call) {
    Tensor y = Tensor::empty({n, out_f}, DType::kF32);
    ops::linear_forward(y, x[call], w, b[call]);
    ops::linear_forward(gy[call], gx[call], gw, gb[call]);
    EXPECT_CLOSE(gy[call], y, tol()) << "call " << call;
  }
  // Rows [1, n] of (n + 1)-row buffers: a one-row offset of 40 or 24
  // elements leaves x and y 16- or 32-byte aligned.
  Tensor xs = in({n + 1, in_f}), ys = Tensor::empty({n, out_f}, DType::kF32);
  ops::linear_forward(ys, xs.slice(1, n + 1), w, Tensor());
  Tensor gxs = to_gpu(xs, dt()), gys = to_gpu(randn({n + 1, out_f}), dt());
  Tensor gyv = gys.slice(1, n + 1);
  ops::linear_forward(gyv, gxs.slice(1, n + 1), gw, Tensor());
  EXPECT_CLOSE(gyv, ys, tol()) << "misaligned row views";
}

// GradMode::kWrite on the GPU into NaN against the CPU's kAdd into zeros:
// a beta-0 GEMM that must not read dx.
TEST_P(CudaLlamaOps, LinearBackwardInputWriteModeOverwritesGarbage) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 21, in_f = 48, out_f = 40;
  Tensor dy = in({n, out_f}), w = in({out_f, in_f}, 0.2f), dx = Tensor::zeros({n, in_f}, DType::kF32);
  Tensor gdy = to_gpu(dy, dt()), gw = to_gpu(w, dt()), gdx = nan_gpu({n, in_f}, dt());
  ops::linear_backward_input(dx, dy, w);
  ops::linear_backward_input(gdx, gdy, gw, ops::GradMode::kWrite);
  EXPECT_CLOSE(gdx, dx, tol()) << "kWrite";
  // The same shape with beta 1 next (its own plan): accumulates onto what kWrite wrote.
  ops::linear_backward_input(dx, dy, w);
  ops::linear_backward_input(gdx, gdy, gw, ops::GradMode::kAdd);
  EXPECT_CLOSE(gdx, dx, tol()) << "kAdd after kWrite";
}

// The SiLU kernel's store-only variant, vectorized (I = 64) and scalar
// (I = 75), and the composed GeGLU path, into NaN.
TEST_P(CudaLlamaOps, GatedBackwardWriteModeOverwritesGarbage) {
  SKIP_WITHOUT_GPU();
  for (ops::Activation f : {ops::Activation::kSilu, ops::Activation::kGeluTanh})
    for (int64_t I : {64, 75}) {
      const int64_t B = 2, T = 7;
      Tensor x = in({B, T, 2 * I}), dy = in({B, T, I}), dx = Tensor::zeros({B, T, 2 * I}, DType::kF32);
      Tensor gx = to_gpu(x, dt()), gdy = to_gpu(dy, dt()), gdx = nan_gpu({B, T, 2 * I}, dt());
      ops::gated_backward(f, dx, dy, x);
      ops::gated_backward(f, gdx, gdy, gx, ops::GradMode::kWrite);
      EXPECT_CLOSE(gdx, dx, tol()) << "activation " << int(f) << ", I = " << I;
    }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaLlamaOps, ::testing::Values(DType::kF32, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace ptune
