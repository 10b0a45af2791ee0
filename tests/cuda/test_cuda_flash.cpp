// The tensor-core flash attention (bf16, head dim 64, 96, 128 or 256) against the CPU
// reference: forward output, dqkv, dprefix_k and dprefix_v on shapes that
// cut tiles unevenly (T = 17, 77, 130, 200, 300 against 64-row tiles; P = 70
// spans a whole key tile), with and
// without a prefix, causal and bidirectional, padding whose tail covers
// whole key tiles and a batch row padded entirely (with P = 0 its queries
// see no key at all: zero output, zero gradient), and GQA (32 query heads
// on 8 kv heads, LLaMA-1B). Every case runs both backwards at D = 64 and
// 128 (attention_cuda.cu): dQ added with atomics by the dkv blocks, and,
// under PTUNE_DETERMINISTIC (ops/deterministic.h), dq and dkv blocks in one
// launch, whose whole dqkv must then repeat bit for bit; D = 64 without GQA
// takes 32 rows a warp in both. D = 96 (Phi-3) and 256 (Gemma 3) launch dq
// and dkv in either mode. Sliding windows (Mistral, Phi-3, Gemma 3's local
// layers) at D = 64 with and without GQA, 96, 128 and 256: shorter than the
// prefix (which it then hides from later queries), within a key tile,
// wider than one, and 1 (each query sees only itself). The f32 path is
// covered by test_cuda_ops.cpp.
// Every test skips when no GPU is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>

#include "framework/ops/attention.h"
#include "framework/ops/deterministic.h"
#include "framework/ops/cuda/kernels.h"
#include "cuda/cuda_test_util.h"

namespace ptune {
namespace {

using namespace cuda_test;  // NOLINT: the shared helpers

// kTails: batch row b keeps its first T − b·⌈T/2⌉ tokens (clamped at 0), so
// row 1 ends in a padded tail of whole key tiles and row 2 is all padding.
enum class Padding : uint8_t { kNone, kTails };

struct FlashCase {
  int64_t b, t, p, h, kvh, d;
  ops::AttentionMask mask;
  Padding padding;
  int64_t window = 0;  // AttentionConfig::window (causal only)
};

// The second parameter: deterministic mode.
class CudaFlash : public ::testing::TestWithParam<std::tuple<FlashCase, bool>> {};

// Tighter than kBf16Tol: these kernels round only the inputs, P and dS
// (for the second product) and the stored results to bf16; their host
// emulation (tests/emulation, ldmatrix / mma.sync fragments modelled lane
// by lane) gives ≤ 2.4e-3 on these cases, while a bug confined to a few
// rows (e.g. a causal bound off by 3 queries) already gave 1.7e-2.
constexpr float kFlashTol = 1e-2f;

// Backward into fresh buffers: dqkv starts from small noise (backward
// accumulates), the prefix gradients from zero.
struct Grads {
  Tensor dqkv, dpk, dpv;
};

TEST_P(CudaFlash, Bf16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  const auto [c, deterministic] = GetParam();
  const ops::ScopedDeterministic mode(deterministic);
  const DType dt = DType::kBF16;
  ops::AttentionConfig cfg{c.h, c.kvh, c.d, c.mask, 1.0f / std::sqrt(float(c.d))};
  cfg.window = c.window;
  auto in = [](const Shape& s, float stddev = 1.0f) { return round_bf16(randn(s, stddev)); };
  Tensor qkv = in({c.b, c.t, cfg.qkv_width()});
  Tensor pk = c.p ? in({c.p, cfg.kv_width()}) : Tensor(), pv = c.p ? in({c.p, cfg.kv_width()}) : Tensor();
  Tensor mask;
  if (c.padding == Padding::kTails) {
    mask = Tensor::empty({c.b, c.t}, DType::kI32);
    const int64_t cut = (c.t + 1) / 2;
    for (int64_t b = 0; b < c.b; ++b)
      for (int64_t t = 0; t < c.t; ++t) mask.data<int32_t>()[b * c.t + t] = t < std::max<int64_t>(c.t - b * cut, 0);
  }
  Tensor out = Tensor::empty({c.b, c.t, cfg.q_width()}, DType::kF32);
  Tensor probs = Tensor::empty({c.b, c.h, c.t, c.p + c.t}, DType::kF32);
  ops::attention_forward(out, probs, qkv, pk, pv, mask, cfg);

  Tensor gqkv = to_gpu(qkv, dt), gpk = c.p ? to_gpu(pk, dt) : Tensor(), gpv = c.p ? to_gpu(pv, dt) : Tensor();
  Tensor gmask = mask.defined() ? mask.to(kGpu) : Tensor();
  Tensor gout = to_gpu(randn({c.b, c.t, cfg.q_width()}), dt);  // poisoned: every element must be written
  Tensor state = Tensor::empty({ops::cuda::flash_state_numel(c.b, c.h, c.t)}, DType::kF32, kGpu);
  ops::attention_forward(gout, state, gqkv, gpk, gpv, gmask, cfg);
  EXPECT_CLOSE(gout, out, kFlashTol);

  Tensor dout = in({c.b, c.t, cfg.q_width()});
  Tensor dqkv0 = in({c.b, c.t, cfg.qkv_width()}, 0.1f);
  Tensor dqkv = dqkv0.clone();  // dqkv0 also seeds the GPU runs
  Tensor dpk = c.p ? Tensor::zeros({c.p, cfg.kv_width()}, DType::kF32) : Tensor();
  Tensor dpv = c.p ? Tensor::zeros({c.p, cfg.kv_width()}, DType::kF32) : Tensor();
  Tensor dscores = Tensor::empty(probs.shape(), DType::kF32);
  ops::attention_backward(dqkv, dpk, dpv, dscores, dout, out, qkv, probs, pk, pv, cfg);

  Tensor gdout = to_gpu(dout, dt);
  auto gpu_backward = [&] {
    Grads g{to_gpu(dqkv0, dt), c.p ? Tensor::zeros({c.p, cfg.kv_width()}, DType::kF32, kGpu) : Tensor(),
            c.p ? Tensor::zeros({c.p, cfg.kv_width()}, DType::kF32, kGpu) : Tensor()};
    ops::attention_backward(g.dqkv, g.dpk, g.dpv, Tensor(), gdout, gout, gqkv, state, gpk, gpv, cfg);
    return g;
  };
  const Grads g = gpu_backward();
  EXPECT_CLOSE(g.dqkv, dqkv, kFlashTol);

  // GradMode::kWrite into NaN (a recycled arena block) equals the CPU's
  // backward into zeros: every dqkv element is stored, padding keys' too.
  Tensor dqkv_zero = Tensor::zeros(qkv.shape(), DType::kF32);
  ops::attention_backward(dqkv_zero, Tensor(), Tensor(), dscores, dout, out, qkv, probs, pk, pv, cfg);
  Tensor gw = nan_gpu(qkv.shape(), dt);
  ops::attention_backward(gw, Tensor(), Tensor(), Tensor(), gdout, gout, gqkv, state, gpk, gpv, cfg,
                          ops::GradMode::kWrite);
  EXPECT_CLOSE(gw, dqkv_zero, kFlashTol) << "kWrite";
  // The prefix gradient sums over the batch without atomics: bit-identical
  // reruns in either mode; dqkv too in deterministic mode.
  const Grads again = gpu_backward();
  const auto same_bits = [](const Tensor& x, const Tensor& y) {
    const Tensor a = x.to(Device::cpu()), b = y.to(Device::cpu());
    return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
  };
  if (c.p) {
    EXPECT_CLOSE(g.dpk, dpk, kFlashTol);
    EXPECT_CLOSE(g.dpv, dpv, kFlashTol);
    EXPECT_TRUE(same_bits(g.dpk, again.dpk));
    EXPECT_TRUE(same_bits(g.dpv, again.dpv));
  }
  if (deterministic) EXPECT_TRUE(same_bits(g.dqkv, again.dqkv)) << "dqkv differs between two deterministic runs";
}

using ops::AttentionMask;
const FlashCase kFlashCases[] = {
    {2, 77, 0, 4, 4, 64, AttentionMask::kBidirectional, Padding::kNone},   // GPT-2 head dim, ragged tiles
    {3, 130, 20, 4, 4, 64, AttentionMask::kCausal, Padding::kTails},       // GPT-2 + prefix-tuning
    {3, 130, 0, 4, 4, 64, AttentionMask::kCausal, Padding::kTails},        // row 2 sees nothing
    {3, 77, 20, 4, 4, 128, AttentionMask::kBidirectional, Padding::kTails},
    {2, 130, 0, 2, 2, 128, AttentionMask::kCausal, Padding::kNone},
    {3, 77, 20, 32, 8, 64, AttentionMask::kCausal, Padding::kTails},       // LLaMA-1B GQA 32/8
    {3, 130, 0, 32, 8, 64, AttentionMask::kBidirectional, Padding::kTails},
    {1, 200, 20, 8, 2, 128, AttentionMask::kCausal, Padding::kNone},       // GQA at D = 128, 4 key tiles
    {2, 17, 5, 2, 1, 64, AttentionMask::kCausal, Padding::kTails},         // one partial tile
    {2, 64, 70, 4, 1, 64, AttentionMask::kCausal, Padding::kTails},        // prefix longer than a key tile
    // Long unpadded rows: most key tiles skip the mask (the kernels' fast
    // path), the diagonal and ragged last tiles take it.
    {2, 300, 20, 4, 4, 64, AttentionMask::kCausal, Padding::kNone},
    {1, 300, 0, 8, 2, 128, AttentionMask::kBidirectional, Padding::kNone},
    {3, 300, 20, 32, 8, 64, AttentionMask::kCausal, Padding::kTails},
    {3, 77, 20, 4, 2, 96, AttentionMask::kCausal, Padding::kTails},  // D = 96 (Phi-3-mini)
    // D = 256 (Gemma 3): 32-row streamed tiles, dK and dV in two column slices.
    {3, 77, 20, 4, 2, 256, AttentionMask::kCausal, Padding::kTails},
    {1, 300, 0, 8, 4, 256, AttentionMask::kBidirectional, Padding::kNone},
    // Sliding windows. At T = 130, P = 20: 5 (< P: later queries see no
    // prefix row; a key block's queries end early), 37 (within one key
    // tile, not aligned to it), 70 (wider than a tile: wholly visible tiles
    // inside the window, masked ones at both of its ends).
    {3, 130, 20, 4, 4, 64, AttentionMask::kCausal, Padding::kTails, 5},
    {3, 130, 20, 4, 4, 64, AttentionMask::kCausal, Padding::kTails, 37},
    {3, 130, 20, 4, 4, 64, AttentionMask::kCausal, Padding::kNone, 70},
    {2, 77, 0, 4, 4, 64, AttentionMask::kCausal, Padding::kTails, 1},       // each query sees only itself
    {3, 300, 20, 32, 8, 64, AttentionMask::kCausal, Padding::kTails, 100},  // GQA 32/8, long rows
    {2, 200, 20, 8, 2, 128, AttentionMask::kCausal, Padding::kTails, 50},   // D = 128, GQA
    {3, 130, 20, 4, 4, 128, AttentionMask::kCausal, Padding::kNone, 64},    // exactly one block
    {3, 130, 20, 4, 2, 96, AttentionMask::kCausal, Padding::kTails, 37},    // D = 96 (Phi-3)
    {3, 130, 20, 4, 2, 256, AttentionMask::kCausal, Padding::kTails, 45},   // D = 256 (Gemma 3 local layers)
};

INSTANTIATE_TEST_SUITE_P(Cases, CudaFlash,
                         ::testing::Combine(::testing::ValuesIn(kFlashCases), ::testing::Bool()),
                         [](const auto& info) {
  const FlashCase& c = std::get<0>(info.param);
  return "T" + std::to_string(c.t) + "_P" + std::to_string(c.p) + "_H" + std::to_string(c.h) + "_KV" +
         std::to_string(c.kvh) + "_D" + std::to_string(c.d) +
         (c.mask == AttentionMask::kCausal ? "_causal" : "_bidir") +
         (c.padding == Padding::kTails ? "_pad" : "") +
         (c.window ? "_window" + std::to_string(c.window) : std::string()) +
         (std::get<1>(info.param) ? "_deterministic" : "") + "_" +
         std::to_string(info.index);
});

}  // namespace
}  // namespace ptune
