// Every CUDA op against the CPU reference on random inputs (ggml's rule),
// in f32 and bf16 (tolerances justified in cuda_test_util.h). Every test
// skips when no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "framework/core/arena.h"
#include "framework/core/memory_cuda.h"
#include "framework/core/rng.h"
#include "framework/core/stream.h"
#include "framework/ops/activation.h"
#include "framework/ops/attention.h"
#include "framework/ops/cross_entropy.h"
#include "framework/ops/cuda/kernels.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/embedding.h"
#include "framework/ops/layernorm.h"
#include "framework/ops/linear.h"
#include "cuda/cuda_test_util.h"

namespace ptune {
namespace {

using namespace cuda_test;  // NOLINT: the shared helpers

TEST_P(CudaOps, ElementwiseAndDropout) {
  SKIP_WITHOUT_GPU();
  const Shape s{3, 37, 65};
  Tensor a = in(s), b = in(s);
  Tensor y = Tensor::empty(s, DType::kF32);
  ops::add_forward(y, a, b);
  Tensor ga = to_gpu(a, dt()), gb = to_gpu(b, dt()), gy = to_gpu(randn(s), dt());
  ops::add_forward(gy, ga, gb);
  EXPECT_CLOSE(gy, y, tol());

  Tensor yd = Tensor::empty(s, DType::kF32);
  ops::dropout_forward(yd, a, 0.3f, 77, 1000);
  Tensor gyd = to_gpu(randn(s), dt());
  ops::dropout_forward(gyd, ga, 0.3f, 77, 1000);
  EXPECT_CLOSE(gyd, yd, tol());  // same Philox mask, bit for bit

  Tensor dx = in(s), gdx = to_gpu(dx, dt());
  ops::dropout_backward(dx, b, 0.3f, 77, 1000);
  ops::dropout_backward(gdx, gb, 0.3f, 77, 1000);
  EXPECT_CLOSE(gdx, dx, tol());

  ops::accumulate(dx, a);
  ops::accumulate(gdx, ga);
  ops::scale_(dx, 0.5f);
  ops::scale_(gdx, 0.5f);
  EXPECT_CLOSE(gdx, dx, tol());
}

TEST_P(CudaOps, Activations) {
  SKIP_WITHOUT_GPU();
  for (ops::Activation f : {ops::Activation::kGeluTanh, ops::Activation::kGeluErf, ops::Activation::kRelu,
                            ops::Activation::kTanh, ops::Activation::kSilu}) {
    const Shape s{5, 129};
    Tensor x = in(s), dy = in(s), dx = in(s);
    Tensor gx = to_gpu(x, dt()), gdy = to_gpu(dy, dt()), gdx = to_gpu(dx, dt());
    Tensor y = Tensor::empty(s, DType::kF32), gy = to_gpu(randn(s), dt());
    ops::activation_forward(f, y, x);
    ops::activation_forward(f, gy, gx);
    EXPECT_CLOSE(gy, y, tol()) << int(f);
    ops::activation_backward(f, dx, dy, x);
    ops::activation_backward(f, gdx, gdy, gx);
    EXPECT_CLOSE(gdx, dx, tol()) << int(f);
  }
}

TEST_P(CudaOps, NormsForwardBackward) {
  SKIP_WITHOUT_GPU();
  for (ops::NormKind kind : {ops::NormKind::kLayerNorm, ops::NormKind::kRmsNorm}) {
    const bool layer = kind == ops::NormKind::kLayerNorm;
    const int64_t n = 19, c = 300;
    Tensor x = in({n, c}), w = in({c}), b = layer ? in({c}) : Tensor(), dy = in({n, c}), dx = in({n, c});
    Tensor y = Tensor::empty({n, c}, DType::kF32), mean = Tensor::empty({n}, DType::kF32),
           rstd = Tensor::empty({n}, DType::kF32);
    ops::norm_forward(kind, y, layer ? mean : Tensor(), rstd, x, w, b, 1e-5f);
    Tensor gx = to_gpu(x, dt()), gw = to_gpu(w, dt()), gb = layer ? to_gpu(b, dt()) : Tensor();
    Tensor gy = to_gpu(randn({n, c}), dt()), gmean = Tensor::empty({n}, DType::kF32, kGpu),
           grstd = Tensor::empty({n}, DType::kF32, kGpu);
    ops::norm_forward(kind, gy, layer ? gmean : Tensor(), grstd, gx, gw, gb, 1e-5f);
    EXPECT_CLOSE(gy, y, tol());
    EXPECT_CLOSE(grstd, rstd, tol());

    Tensor dw = randn({c}), db = randn({c});
    Tensor gdw = dw.to(kGpu), gdb = db.to(kGpu), gdx = to_gpu(dx, dt()), gdy = to_gpu(dy, dt());
    ops::norm_backward(kind, dx, dw, layer ? db : Tensor(), dy, x, w, layer ? mean : Tensor(), rstd);
    ops::norm_backward(kind, gdx, gdw, layer ? gdb : Tensor(), gdy, gx, gw, layer ? gmean : Tensor(), grstd);
    EXPECT_CLOSE(gdx, dx, tol());
    EXPECT_CLOSE(gdw, dw, dt() == DType::kF32 ? 1e-5f : kBf16Tol);
    if (layer) EXPECT_CLOSE(gdb, db, dt() == DType::kF32 ? 1e-5f : kBf16Tol);
  }
}

TEST_P(CudaOps, FusedResidualDropoutNorm) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 7, c = 96;
  Tensor a = in({n, c}), r = in({n, c}), w = in({c}), b = in({c});
  // Reference: dropout, add, LayerNorm with the CPU ops.
  Tensor d = Tensor::empty({n, c}, DType::kF32), h = Tensor::empty({n, c}, DType::kF32),
         y = Tensor::empty({n, c}, DType::kF32), mean = Tensor::empty({n}, DType::kF32),
         rstd = Tensor::empty({n}, DType::kF32);
  ops::dropout_forward(d, a, 0.1f, 5, 0);
  ops::add_forward(h, r, d);
  ops::norm_forward(ops::NormKind::kLayerNorm, y, mean, rstd, h, w, b, 1e-5f);
  Tensor gy = to_gpu(randn({n, c}), dt()), gh = to_gpu(randn({n, c}), dt());
  Tensor gmean = Tensor::empty({n}, DType::kF32, kGpu), grstd = Tensor::empty({n}, DType::kF32, kGpu);
  ops::cuda::residual_norm_forward(ops::NormKind::kLayerNorm, gy, gh, gmean, grstd, to_gpu(a, dt()),
                                           to_gpu(r, dt()), to_gpu(w, dt()), to_gpu(b, dt()), 1e-5f, 0.1f, 5, 0,
                                           Stream::default_stream(kGpu));
  EXPECT_CLOSE(gh, h, tol());
  EXPECT_CLOSE(gy, y, tol());
}

// The public fused entry the model's layer_forward calls (routed to the
// kernel above with p = 0) against the CPU's add + norm, both norms, with
// and without bias. On bf16 the GPU normalises sum rounded to bf16 as
// stored, the CPU the f32 sum of the same bf16-exact inputs: within tol().
TEST_P(CudaOps, ResidualNormMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 11, c = 200;
  Tensor a = in({n, c}), r = in({n, c}), w = in({c}), bias = in({c});
  Tensor ga = to_gpu(a, dt()), gr = to_gpu(r, dt()), gw = to_gpu(w, dt()), gbias = to_gpu(bias, dt());
  for (ops::NormKind kind : {ops::NormKind::kLayerNorm, ops::NormKind::kRmsNorm}) {
    const bool layer = kind == ops::NormKind::kLayerNorm;
    for (bool with_bias : {true, false}) {
      Tensor y = Tensor::empty({n, c}, DType::kF32), h = Tensor::empty({n, c}, DType::kF32),
             mean = layer ? Tensor::empty({n}, DType::kF32) : Tensor(), rstd = Tensor::empty({n}, DType::kF32);
      ops::residual_norm_forward(kind, y, h, mean, rstd, a, r, w, with_bias ? bias : Tensor(), 1e-5f);
      Tensor gy = to_gpu(randn({n, c}), dt()), gh = to_gpu(randn({n, c}), dt());
      Tensor gmean = layer ? Tensor::empty({n}, DType::kF32, kGpu) : Tensor(),
             grstd = Tensor::empty({n}, DType::kF32, kGpu);
      ops::residual_norm_forward(kind, gy, gh, gmean, grstd, ga, gr, gw, with_bias ? gbias : Tensor(), 1e-5f);
      EXPECT_CLOSE(gh, h, tol()) << int(kind) << " bias " << with_bias;
      EXPECT_CLOSE(gy, y, tol()) << int(kind) << " bias " << with_bias;
      EXPECT_CLOSE(grstd, rstd, tol()) << int(kind) << " bias " << with_bias;
      if (layer) EXPECT_CLOSE(gmean, mean, tol()) << int(kind) << " bias " << with_bias;
    }
  }
}

TEST_P(CudaOps, EmbeddingsAndPrompt) {
  SKIP_WITHOUT_GPU();
  const int64_t v = 50, c = 24, p = 4, n = 30;
  Tensor table = in({v, c}), prompt = in({p, c});
  Tensor ids = Tensor::empty({n}, DType::kI32);
  for (int64_t i = 0; i < n; ++i) ids.data<int32_t>()[i] = int32_t((i * 7) % v) - (i % 5 == 0 ? int32_t(v) : 0);
  for (int64_t i = 0; i < n; ++i)
    if (ids.data<int32_t>()[i] < 0) ids.data<int32_t>()[i] = -int32_t(1 + i % p);
  Tensor gids = ids.to(kGpu), gtable = to_gpu(table, dt()), gprompt = to_gpu(prompt, dt());
  Tensor out = Tensor::empty({n, c}, DType::kF32), gout = to_gpu(randn({n, c}), dt());
  ops::prompt_embedding_forward(out, ids, table, prompt);
  ops::prompt_embedding_forward(gout, gids, gtable, gprompt);
  EXPECT_CLOSE(gout, out, 0.0f);  // a copy
  // Gemma's √C word scaling (prompt rows unscaled), one rounding in bf16.
  ops::prompt_embedding_forward(out, ids, table, prompt, 5.5f);
  ops::prompt_embedding_forward(gout, gids, gtable, gprompt, 5.5f);
  EXPECT_CLOSE(gout, out, tol()) << "table_scale";

  Tensor dout = in({n, c}), dprompt = randn({p, c}), gdprompt = dprompt.to(kGpu);
  ops::prompt_embedding_backward(dprompt, dout, ids);
  ops::prompt_embedding_backward(gdprompt, to_gpu(dout, dt()), gids);
  EXPECT_CLOSE(gdprompt, dprompt, kF32Tol);

  // Plain lookups reject virtual ids with the CPU's message.
  EXPECT_THROW(ops::embedding_forward(gout, gids, gtable), Error);
  Tensor word_ids = Tensor::empty({n}, DType::kI32);
  for (int64_t i = 0; i < n; ++i) word_ids.data<int32_t>()[i] = int32_t((i * 11) % v);
  Tensor gword = word_ids.to(kGpu);
  ops::embedding_forward(out, word_ids, table);
  ops::embedding_add(out, word_ids, table);
  ops::embedding_forward(gout, gword, gtable);
  ops::embedding_add(gout, gword, gtable);
  EXPECT_CLOSE(gout, out, tol());
  Tensor dtable = randn({v, c}), gdtable = dtable.to(kGpu);
  ops::embedding_backward(dtable, dout, word_ids);
  ops::embedding_backward(gdtable, to_gpu(dout, dt()), gword);
  EXPECT_CLOSE(gdtable, dtable, kF32Tol);

  // The causal-LM head's row gradient: distinct rows added into activations
  // in their own dtype.
  Tensor rows = Tensor::empty({n}, DType::kI32);
  for (int64_t i = 0; i < n; ++i) rows.data<int32_t>()[i] = int32_t((i * 13 + 3) % v);  // 13 ⊥ 50: distinct
  Tensor act = in({v, c}), gact = to_gpu(act, dt());
  ops::scatter_add_rows(act, dout, rows);
  ops::scatter_add_rows(gact, to_gpu(dout, dt()), rows.to(kGpu));
  EXPECT_CLOSE(gact, act, tol());
  rows.data<int32_t>()[0] = int32_t(v);
  EXPECT_THROW(ops::scatter_add_rows(gact, to_gpu(dout, dt()), rows.to(kGpu)), Error);
}

TEST_P(CudaOps, CrossEntropy) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 13, v = 1000;
  Tensor logits = in({n, v}, 3.0f);
  Tensor targets = Tensor::empty({n}, DType::kI32);
  for (int64_t i = 0; i < n; ++i) targets.data<int32_t>()[i] = i % 4 == 3 ? ops::kIgnoreIndex : int32_t(i * 71 % v);
  Tensor losses = Tensor::empty({n}, DType::kF32), lse = Tensor::empty({n}, DType::kF32);
  const int64_t count = ops::cross_entropy_forward(losses, lse, logits, targets);
  Tensor gl = to_gpu(logits, dt()), gt = targets.to(kGpu);
  Tensor glosses = Tensor::empty({n}, DType::kF32, kGpu), glse = Tensor::empty({n}, DType::kF32, kGpu);
  EXPECT_EQ(ops::cross_entropy_forward(glosses, glse, gl, gt), count);
  EXPECT_CLOSE(glosses, losses, dt() == DType::kF32 ? kF32Tol : 1e-3f);  // stats are f32 either way
  EXPECT_CLOSE(glse, lse, kF32Tol);
  Tensor d = in({n, v}), gd = to_gpu(d, dt());
  ops::cross_entropy_backward(d, logits, lse, targets, 0.25f);
  ops::cross_entropy_backward(gd, gl, glse, gt, 0.25f);
  EXPECT_CLOSE(gd, d, tol());
  // A bad target names its row, as on the CPU.
  targets.data<int32_t>()[5] = int32_t(v);
  EXPECT_THROW(ops::cross_entropy_forward(glosses, glse, gl, targets.to(kGpu)), Error);
}

TEST_P(CudaOps, LinearForwardBackward) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 33, in_f = 72, out_f = 40;
  Tensor x = in({3, 11, in_f}), w = in({out_f, in_f}, 0.2f), bias = in({out_f});
  Tensor y = Tensor::empty({3, 11, out_f}, DType::kF32);
  ops::linear_forward(y, x, w, bias);
  Tensor gx = to_gpu(x, dt()), gw = to_gpu(w, dt()), gbias = to_gpu(bias, dt());
  Tensor gy = to_gpu(randn({3, 11, out_f}), dt());
  ops::linear_forward(gy, gx, gw, gbias);
  EXPECT_CLOSE(gy, y, tol());

  // Fused bias + GELU epilogue against linear + activation on the CPU.
  Tensor yg = Tensor::empty({3, 11, out_f}, DType::kF32);
  ops::activation_forward(ops::Activation::kGeluTanh, yg, y);
  ops::cuda::linear_forward_epilogue(gy, gx, gw, gbias, ops::cuda::Epilogue::kBiasGeluTanh,
                                     Stream::default_stream(kGpu));
  EXPECT_CLOSE(gy, yg, dt() == DType::kF32 ? 1e-4f : kBf16Tol);  // cuBLASLt's GELU uses its own tanh

  Tensor dy = in({n, out_f}), dx = in({n, in_f});
  Tensor gdy = to_gpu(dy, dt()), gdx = to_gpu(dx, dt());
  ops::linear_backward_input(dx, dy, w);
  ops::linear_backward_input(gdx, gdy, gw);
  EXPECT_CLOSE(gdx, dx, tol());

  Tensor dw = randn({out_f, in_f}), db = randn({out_f});
  Tensor gdw = dw.to(kGpu), gdb = db.to(kGpu);  // f32 master gradients
  Tensor x2 = x.view({n, in_f});
  ops::linear_backward_params(dw, db, dy, x2);
  ops::linear_backward_params(gdw, gdb, gdy, to_gpu(x2, dt()));
  EXPECT_CLOSE(gdw, dw, tol());
  EXPECT_CLOSE(gdb, db, tol());
}

struct AttnCase {
  int64_t b, t, p, h, kvh, d;
  ops::AttentionMask mask;
  bool padding;
  int64_t window = 0;  // AttentionConfig::window (causal only)
};

class CudaAttention : public ::testing::TestWithParam<std::tuple<DType, AttnCase>> {};

TEST_P(CudaAttention, FlashMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const auto [dt, c] = GetParam();
  const float tol = dt == DType::kF32 ? 2e-5f : kBf16Tol;
  ops::AttentionConfig cfg{c.h, c.kvh, c.d, c.mask, 1.0f / std::sqrt(float(c.d))};
  cfg.window = c.window;
  auto in = [&](const Shape& s) { return dt == DType::kF32 ? randn(s) : round_bf16(randn(s)); };
  Tensor qkv = in({c.b, c.t, cfg.qkv_width()});
  Tensor pk = c.p ? in({c.p, cfg.kv_width()}) : Tensor(), pv = c.p ? in({c.p, cfg.kv_width()}) : Tensor();
  Tensor mask;
  if (c.padding) {
    mask = Tensor::empty({c.b, c.t}, DType::kI32);
    for (int64_t b = 0; b < c.b; ++b)
      for (int64_t t = 0; t < c.t; ++t) mask.data<int32_t>()[b * c.t + t] = t < c.t - 3 * b ? 1 : 0;  // right padding
  }
  Tensor out = Tensor::empty({c.b, c.t, cfg.q_width()}, DType::kF32);
  Tensor probs = Tensor::empty({c.b, c.h, c.t, c.p + c.t}, DType::kF32);
  ops::attention_forward(out, probs, qkv, pk, pv, mask, cfg);

  Tensor gqkv = to_gpu(qkv, dt), gpk = c.p ? to_gpu(pk, dt) : Tensor(), gpv = c.p ? to_gpu(pv, dt) : Tensor();
  Tensor gmask = c.padding ? mask.to(kGpu) : Tensor();
  Tensor gout = to_gpu(randn({c.b, c.t, cfg.q_width()}), dt);  // poisoned: every element must be written
  Tensor state = Tensor::empty({ops::cuda::flash_state_numel(c.b, c.h, c.t)}, DType::kF32, kGpu);
  ops::attention_forward(gout, state, gqkv, gpk, gpv, gmask, cfg);
  EXPECT_CLOSE(gout, out, tol);

  Tensor dout = in({c.b, c.t, cfg.q_width()});
  Tensor dqkv = in({c.b, c.t, cfg.qkv_width()});
  Tensor dpk = c.p ? randn({c.p, cfg.kv_width()}) : Tensor(), dpv = c.p ? randn({c.p, cfg.kv_width()}) : Tensor();
  Tensor gdqkv = to_gpu(dqkv, dt), gdpk = c.p ? dpk.to(kGpu) : Tensor(), gdpv = c.p ? dpv.to(kGpu) : Tensor();
  Tensor dscores = Tensor::empty(probs.shape(), DType::kF32);
  ops::attention_backward(dqkv, dpk, dpv, dscores, dout, out, qkv, probs, pk, pv, cfg);
  ops::attention_backward(gdqkv, gdpk, gdpv, Tensor(), to_gpu(dout, dt), gout, gqkv, state, gpk, gpv, cfg);
  EXPECT_CLOSE(gdqkv, dqkv, tol);
  if (c.p) {
    EXPECT_CLOSE(gdpk, dpk, tol);
    EXPECT_CLOSE(gdpv, dpv, tol);
  }
}

const AttnCase kCases[] = {
    {2, 17, 0, 4, 4, 16, ops::AttentionMask::kBidirectional, false},
    {2, 70, 5, 4, 4, 16, ops::AttentionMask::kCausal, false},     // GPT-2 + prefix, several tiles
    {3, 40, 8, 8, 2, 64, ops::AttentionMask::kCausal, true},      // GQA (LLaMA) + prefix + padding
    {2, 33, 3, 2, 1, 128, ops::AttentionMask::kBidirectional, true},  // BERT-style with padding, D = 128
    // The δ = rowsum(dout ∘ out) kernel's other layouts: D = 40 reads 16-byte
    // vectors, 10 (f32) or 5 (bf16) per row, not a power of two; D = 18 fits
    // no vector and takes the scalar loads, here with 3 kv heads for 6 queries.
    {2, 45, 0, 2, 2, 40, ops::AttentionMask::kBidirectional, false},
    {2, 21, 3, 6, 3, 18, ops::AttentionMask::kCausal, true},
    // Gemma 3's head dim (f32: the SIMT kernels' 16-key tiles; bf16: the
    // tensor cores), GQA, prefix, padding; and a head dim past 128 that only
    // the SIMT kernels take, in both dtypes.
    {2, 37, 4, 4, 2, 256, ops::AttentionMask::kCausal, true},
    {2, 37, 4, 4, 2, 192, ops::AttentionMask::kCausal, true},
    // Sliding windows (f32, and bf16 at D = 16, 32, 40 and 192: the SIMT
    // kernels, whose key sweeps start at a query block's window and whose
    // dkv sweep ends at a key block's; bf16 at 64 and 256 takes the tensor
    // cores). T = 150 makes three query blocks, so the later ones start
    // past key 0; a window of 5 < P hides the prefix from all but the first
    // queries and stops dkv's sweep of the first key block early; a window
    // of 2 leaves the last padded queries only padding keys (zero output
    // and gradient); 64 is exactly one block; 16-key tiles at D = 256.
    {2, 150, 20, 4, 4, 16, ops::AttentionMask::kCausal, false, 37},
    {3, 150, 20, 8, 2, 64, ops::AttentionMask::kCausal, true, 5},   // GQA
    {3, 40, 8, 4, 2, 32, ops::AttentionMask::kCausal, true, 2},
    {1, 129, 0, 2, 2, 40, ops::AttentionMask::kCausal, false, 64},
    {2, 100, 4, 4, 2, 256, ops::AttentionMask::kCausal, true, 30},
    {2, 100, 20, 4, 2, 192, ops::AttentionMask::kCausal, true, 50},
};

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaOps, ::testing::Values(DType::kF32, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });
INSTANTIATE_TEST_SUITE_P(Cases, CudaAttention,
                         ::testing::Combine(::testing::Values(DType::kF32, DType::kBF16), ::testing::ValuesIn(kCases)),
                         [](const auto& info) {
                           const AttnCase& c = std::get<1>(info.param);
                           return std::string(dtype_name(std::get<0>(info.param))) + "_" +
                                  std::to_string(info.index) +
                                  (c.window ? "_window" + std::to_string(c.window) : std::string());
                         });

TEST(CudaRuntime, CachingAllocatorReachesSteadyState) {
  SKIP_WITHOUT_GPU();
  Arena arena(kGpu);
  for (int step = 0; step < 4; ++step) {
    arena.reset();
    for (int i = 0; i < 10; ++i) arena.alloc({1000 + 100 * i, 64});
    Tensor scratch = Tensor::empty({12345}, DType::kF32, kGpu);  // freed to the cache each step
  }
  const uint64_t before = cuda::allocator_stats(0).system_allocations;
  for (int step = 0; step < 3; ++step) {
    arena.reset();
    for (int i = 0; i < 10; ++i) arena.alloc({1000 + 100 * i, 64});
    Tensor scratch = Tensor::empty({12345}, DType::kF32, kGpu);
  }
  EXPECT_EQ(cuda::allocator_stats(0).system_allocations, before);
}

TEST(CudaRuntime, StreamsOrderedByEventsAndGraphReplay) {
  SKIP_WITHOUT_GPU();
  Stream compute = Stream::create(kGpu), comm = Stream::create(kGpu, Stream::Priority::kHigh);
  Tensor a = randn({1 << 16}), b = randn({1 << 16});
  Tensor ga = a.to(kGpu), gb = b.to(kGpu), gy = Tensor::empty({1 << 16}, DType::kF32, kGpu);
  Event ready(kGpu), done(kGpu);
  ops::cuda::add_forward(gy, ga, gb, compute);
  ready.record(compute);
  ready.block(comm);
  ops::cuda::scale_(gy, 2.0f, comm);  // must see the add
  done.record(comm);
  done.synchronize();
  Tensor y = Tensor::empty({1 << 16}, DType::kF32);
  ops::add_forward(y, a, b);
  ops::scale_(y, 2.0f);
  EXPECT_LE(rel_err(gy.to(Device::cpu()), y), kF32Tol);

  // Capture scale_ by 0.5 and replay it twice: y / 4.
  Graph graph;
  graph.begin(compute);
  ops::cuda::scale_(gy, 0.5f, compute);
  graph.end(compute);
  graph.replay(compute);
  graph.replay(compute);
  compute.synchronize();
  ops::scale_(y, 0.25f);
  EXPECT_LE(rel_err(gy.to(Device::cpu()), y), kF32Tol);
}

TEST(CudaRuntime, AdamWMatchesHandComputedStep) {
  SKIP_WITHOUT_GPU();
  // One element, step 1 (β1 = 0.9, β2 = 0.999): m = 0.1·g, v = 0.001·g²,
  // √v / √(1 − β2) = |g|, so the update is lr·g/(|g| + eps) after decay
  // p·(1 − lr·wd). The scalars are formed as train/optimizer.cpp forms them.
  const float p0 = 0.5f, g = -2.0f, lr = 0.1f, wd = 0.01f, eps = 1e-8f;
  Tensor p = Tensor::empty({1}, DType::kF32);
  p.data<float>()[0] = p0;
  Tensor gr = Tensor::empty({1}, DType::kF32);
  gr.data<float>()[0] = g;
  Tensor gp = p.to(kGpu), gg = gr.to(kGpu), gm = Tensor::zeros({1}, DType::kF32, kGpu),
         gv = Tensor::zeros({1}, DType::kF32, kGpu);
  ops::AdamWScalars sc;
  sc.decay_scale = float(1.0 - double(lr) * double(wd));
  sc.w1 = float(1.0 - 0.9);
  sc.b2 = 0.999f;
  sc.w2 = float(1.0 - 0.999);
  sc.bc2_sqrt = float(std::sqrt(1.0 - 0.999));
  sc.eps = eps;
  sc.neg_step_size = float(-double(lr) / (1.0 - 0.9));
  ops::cuda::adamw_update(gp, gg, gm, gv, Tensor(), sc, Stream::default_stream(kGpu));
  const float expect = p0 * (1.0f - lr * wd) - lr * g / (std::fabs(g) + eps);
  EXPECT_NEAR(gp.to(Device::cpu()).data<float>()[0], expect, 1e-6f);
}

TEST(CudaRuntime, CpuBuildErrorsAreClear) {
  // In a CUDA build a CPU-only op file (PTUNE_REQUIRE_CPU) still refuses GPU
  // tensors with a message instead of reading device memory.
  SKIP_WITHOUT_GPU();
  Tensor g = Tensor::empty({4}, DType::kI64, kGpu);
  EXPECT_THROW(ops::scale_(g, 1.0f), Error);  // i64 has no CUDA kernel: clear error
}

}  // namespace
}  // namespace ptune
