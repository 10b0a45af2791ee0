// The tensor-core flash attention kernels (framework/ops/cuda/
// flash_attention.cuh), run on the CPU through cuda_emulation.h with the
// launch geometry the CUDA build uses, against the CPU attention op (itself
// tested against transformers): forward output, dqkv in both GradModes and
// the prefix gradients. This is how CI checks the kernels' indexing, masks
// and fragment layouts without a GPU; tests/cuda/test_cuda_flash.cpp runs
// the same comparison on a real GPU.
//
// Cases cut tiles unevenly (T = 17, 77, 130, 300 against 64-row tiles; P = 70
// spans a whole key tile), with and without a prefix, causal and
// bidirectional, padding whose tail covers whole key tiles and a batch row
// padded entirely, GQA, and D = 64, 96 (Phi-3), 128 and 256 (Q and dO
// re-read from shared memory, dK and dV in two column slices); every form
// of the backward (16 or 32 rows a warp, dq and dkv in two launches or
// one, dQ added by the dkv kernel). Sliding windows (Mistral, Phi-3, Gemma
// 3) narrower than a tile, spanning tiles and tile-aligned, hiding prefix
// rows from late queries (and whole prefix key blocks from every query),
// and hiding every key of padded queries.
#include "emulation/cuda_emulation.h"
// After the emulation: the kernels compile against it.
#include "framework/ops/cuda/flash_attention.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "framework/core/rng.h"
#include "framework/ops/attention.h"

namespace ptune {
namespace {

namespace flash = ops::cuda::flash;
using ops::cuda::bf16;

// Same bound as the GPU test (see test_cuda_flash.cpp): only the inputs, P,
// dS and the stored results are rounded to bf16.
constexpr float kFlashTol = 1e-2f;

struct Case {
  int64_t b, t, p, h, kvh, d;
  bool causal, padded;
  int64_t window = 0;  // AttentionConfig::window (causal only)
};

Tensor randn_bf16(const Shape& s, uint64_t seed, float stddev = 1.0f) {
  Tensor t = Tensor::empty(s, DType::kF32);
  Rng(seed).fill_normal(t, 0.0f, stddev);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = __bfloat162float(__float2bfloat16_rn(t.data<float>()[i]));
  return t;
}
std::vector<bf16> to_bf16(const Tensor& t) {
  std::vector<bf16> v(size_t(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = __float2bfloat16_rn(t.data<float>()[i]);
  return v;
}
Tensor to_f32(const std::vector<bf16>& v, const Shape& s) {
  Tensor t = Tensor::empty(s, DType::kF32);
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = __bfloat162float(v[i]);
  return t;
}
Tensor to_f32(const std::vector<float>& v, const Shape& s) {
  Tensor t = Tensor::empty(s, DType::kF32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// ‖got − want‖ / ‖want‖ (the GPU tests' measure); NaN gives +∞.
double rel_err(const Tensor& got, const Tensor& want) {
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double d = double(got.data<float>()[i]) - want.data<float>()[i];
    if (std::isnan(d)) return INFINITY;
    num += d * d;
    den += double(want.data<float>()[i]) * want.data<float>()[i];
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}
#define EXPECT_CLOSE(got, want, tol) EXPECT_LE(rel_err(got, want), tol)

class FlashEmulated : public ::testing::TestWithParam<Case> {};

TEST_P(FlashEmulated, MatchesCpu) {
  const Case c = GetParam();
  ops::AttentionConfig cfg{c.h, c.kvh, c.d, c.causal ? ops::AttentionMask::kCausal : ops::AttentionMask::kBidirectional,
                           1.0f / std::sqrt(float(c.d))};
  cfg.window = c.window;
  const int64_t S = c.p + c.t, qw = cfg.q_width(), kvw = cfg.kv_width(), W = cfg.qkv_width();
  const flash::Geometry g{c.b, c.t, c.p, S, c.h, c.kvh, c.d, c.h / c.kvh, W, qw, kvw, cfg.scale, c.causal, c.window};

  Tensor qkv = randn_bf16({c.b, c.t, W}, 1), dout = randn_bf16({c.b, c.t, qw}, 2);
  Tensor pk = c.p ? randn_bf16({c.p, kvw}, 3) : Tensor(), pv = c.p ? randn_bf16({c.p, kvw}, 4) : Tensor();
  Tensor dqkv0 = randn_bf16({c.b, c.t, W}, 5, 0.1f);
  // Row b keeps its first T − b·⌈T/2⌉ tokens: row 1 ends in padded key tiles, row 2 is all padding.
  std::vector<int32_t> mask(size_t(c.b * c.t), 1);
  Tensor cpu_mask;
  if (c.padded) {
    cpu_mask = Tensor::empty({c.b, c.t}, DType::kI32);
    for (int64_t b = 0; b < c.b; ++b)
      for (int64_t t = 0; t < c.t; ++t)
        cpu_mask.data<int32_t>()[b * c.t + t] = mask[size_t(b * c.t + t)] = t < c.t - b * ((c.t + 1) / 2);
  }

  // Reference: the CPU op on the same bf16-valued inputs, in f32.
  Tensor out = Tensor::empty({c.b, c.t, qw}, DType::kF32), probs = Tensor::empty({c.b, c.h, c.t, S}, DType::kF32);
  ops::attention_forward(out, probs, qkv, pk, pv, cpu_mask, cfg);
  if (c.window) {
    // The reference sees exactly what the window allows: query i (key P + i)
    // the real keys j ≤ P + i with P + i − j < window (scores are O(1), so
    // no visible probability underflows to 0).
    int64_t hidden = 0;
    for (int64_t b = 0; b < c.b; ++b)
      for (int64_t h = 0; h < c.h; ++h)
        for (int64_t i = 0; i < c.t; ++i) {
          const float* row = probs.data<float>() + ((b * c.h + h) * c.t + i) * S;
          for (int64_t j = 0; j < S; ++j) {
            const bool real = j < c.p || mask[size_t(b * c.t + j - c.p)] != 0;
            const bool seen = real && j <= c.p + i && c.p + i - j < c.window;
            hidden += real && j <= c.p + i && !seen;
            ASSERT_EQ(row[j] > 0.0f, seen) << "reference: b " << b << " h " << h << " query " << i << " key " << j;
          }
        }
    if (c.window < S) ASSERT_GT(hidden, 0) << "the window hides no key";
  }
  Tensor dqkv = dqkv0.clone(), dqkv_zero = Tensor::zeros(qkv.shape(), DType::kF32);
  Tensor dpk = c.p ? Tensor::zeros({c.p, kvw}, DType::kF32) : Tensor(), dpv = dpk.defined() ? dpk.clone() : Tensor();
  Tensor dscores = Tensor::empty(probs.shape(), DType::kF32);
  ops::attention_backward(dqkv, dpk, dpv, dscores, dout, out, qkv, probs, pk, pv, cfg);
  ops::attention_backward(dqkv_zero, Tensor(), Tensor(), dscores, dout, out, qkv, probs, pk, pv, cfg);

  // The kernels, emulated, on bf16 buffers; outputs start as NaN.
  const std::vector<bf16> bqkv = to_bf16(qkv), bdout = to_bf16(dout);
  const std::vector<bf16> bpk = c.p ? to_bf16(pk) : std::vector<bf16>(), bpv = c.p ? to_bf16(pv) : std::vector<bf16>();
  const bf16 nan = __float2bfloat16_rn(NAN);
  std::vector<bf16> bout(size_t(c.b * c.t * qw), nan);
  std::vector<float> lse(size_t(c.b * c.h * c.t), NAN);
  const bf16* ppk = c.p ? bpk.data() : nullptr;
  const bf16* ppv = c.p ? bpv.data() : nullptr;
  auto emulate = [](const flash::MmaLaunch& l, auto kernel) { emulation::launch(l.grid, l.threads, l.smem, kernel); };
  auto dispatch = [&](auto kd) {
    constexpr int kD = decltype(kd)::value;
    emulate(flash::forward_launch<kD>(g), [&] {
      flash::flash_forward_mma_kernel<kD>(g, bout.data(), lse.data(), bqkv.data(), ppk, ppv, mask.data());
    });
    EXPECT_CLOSE(to_f32(bout, out.shape()), out, kFlashTol) << "forward";

    // δ = rowsum(dout ∘ out) per (b, h, t), as the δ kernel computes it.
    std::vector<float> delta(lse.size());
    for (int64_t b = 0; b < c.b; ++b)
      for (int64_t t = 0; t < c.t; ++t)
        for (int64_t h = 0; h < c.h; ++h) {
          float sum = 0.0f;
          for (int64_t k = 0; k < c.d; ++k) {
            const size_t i = size_t((b * c.t + t) * qw + h * c.d + k);
            sum += __bfloat162float(bdout[i]) * __bfloat162float(bout[i]);
          }
          delta[size_t((b * c.h + h) * c.t + t)] = sum;
        }
    // Backward in both GradModes, as two launches (dq, dkv: D = 96 and
    // 256), as one (deterministic mode), or as dkv adding dQ with atomics
    // then the finish kernel (the default at D = 64 and 128), with one or
    // (D = 64) two m tiles a warp: each variant at least once,
    // each mode more than once (the launch only maps blocks, the mode only
    // changes stores).
    enum class Launches { kDqThenDkv, kOne, kDqAtomic };
    auto backward = [&](auto mt, bool add, Launches launches) {
      constexpr int kMT = decltype(mt)::value;
      const char* how[] = {", dq then dkv", ", one launch", ", dq added by dkv"};
      SCOPED_TRACE(std::string(add ? "kAdd" : "kWrite") + how[int(launches)] + ", " + std::to_string(16 * kMT) +
                   " rows a warp");
      std::vector<bf16> bdqkv = add ? to_bf16(dqkv0) : std::vector<bf16>(bqkv.size(), nan);
      std::vector<float> part(size_t(std::max<int64_t>(c.b * c.p * 2 * kvw, 1)), NAN);
      float* ppart = c.p && add ? part.data() : nullptr;
      constexpr bool kFused = kD == 64 || kD == 128;  // attention_cuda.cu: kFusedBackward
      if (launches == Launches::kOne) {
        if constexpr (kFused)
          emulate(flash::backward_launch<kD, kMT>(g), [&] {
            flash::flash_backward_mma_kernel<kD, kMT>(g, bdqkv.data(), add, ppart, bdout.data(), bqkv.data(), ppk,
                                                      ppv, lse.data(), delta.data(), mask.data());
          });
      } else if (launches == Launches::kDqAtomic) {
        if constexpr (kFused) {
          std::vector<float> dq_acc(size_t(c.b * c.t * qw), 0.0f);  // zeroed, as the launcher's memset
          emulate(flash::dkv_launch<kD, kMT, true>(g), [&] {
            flash::flash_dkv_mma_kernel<kD, kMT, true>(g, bdqkv.data(), add, ppart, dq_acc.data(), bdout.data(),
                                                       bqkv.data(), ppk, ppv, lse.data(), delta.data(), mask.data());
          });
          emulate(flash::dq_finish_launch(g),
                  [&] { flash::flash_dq_finish_kernel(g, bdqkv.data(), add, dq_acc.data()); });
        }
      } else {
        emulate(flash::dq_launch<kD, kMT>(g), [&] {
          flash::flash_dq_mma_kernel<kD, kMT>(g, bdqkv.data(), add, bdout.data(), bqkv.data(), ppk, ppv, lse.data(),
                                              delta.data(), mask.data());
        });
        emulate(flash::dkv_launch<kD, kMT>(g), [&] {
          flash::flash_dkv_mma_kernel<kD, kMT>(g, bdqkv.data(), add, ppart, nullptr, bdout.data(), bqkv.data(), ppk,
                                               ppv, lse.data(), delta.data(), mask.data());
        });
      }
      EXPECT_CLOSE(to_f32(bdqkv, qkv.shape()), add ? dqkv : dqkv_zero, kFlashTol) << "dqkv";
      if (!ppart) return;
      // part (B, P, 2, KVH·D) summed over b, as prefix_reduce_kernel does.
      std::vector<float> gk(size_t(c.p * kvw), 0.0f), gv(gk.size(), 0.0f);
      for (int64_t b = 0; b < c.b; ++b)
        for (int64_t j = 0; j < c.p; ++j)
          for (int64_t k = 0; k < kvw; ++k) {
            gk[size_t(j * kvw + k)] += part[size_t(((b * c.p + j) * 2) * kvw + k)];
            gv[size_t(j * kvw + k)] += part[size_t(((b * c.p + j) * 2 + 1) * kvw + k)];
          }
      EXPECT_CLOSE(to_f32(gk, dpk.shape()), dpk, kFlashTol) << "dprefix_k";
      EXPECT_CLOSE(to_f32(gv, dpv.shape()), dpv, kFlashTol) << "dprefix_v";
    };
    using One = std::integral_constant<int, 1>;
    using Two = std::integral_constant<int, 2>;
    backward(One(), /*add=*/true, Launches::kDqThenDkv);
    if constexpr (kD == 96 || kD == 256) {  // two launches only: the other mode
      backward(One(), false, Launches::kDqThenDkv);
      return;
    }
    backward(One(), false, Launches::kOne);
    backward(One(), false, Launches::kDqAtomic);
    if constexpr (kD == 64) {
      backward(Two(), false, Launches::kDqThenDkv);
      backward(Two(), true, Launches::kOne);
      backward(Two(), true, Launches::kDqAtomic);
    } else {
      backward(One(), false, Launches::kDqThenDkv);
      backward(One(), true, Launches::kOne);
      backward(One(), true, Launches::kDqAtomic);
    }
  };
  if (c.d == 64) dispatch(std::integral_constant<int, 64>());
  else if (c.d == 96) dispatch(std::integral_constant<int, 96>());
  else if (c.d == 128) dispatch(std::integral_constant<int, 128>());
  else dispatch(std::integral_constant<int, 256>());
}

const Case kCases[] = {
    {1, 77, 0, 2, 2, 64, false, false},   // ragged tiles, bidirectional
    {3, 130, 20, 2, 2, 64, true, true},   // GPT-2 + prefix tuning; row 2 all padding
    {3, 130, 0, 1, 1, 64, true, true},    // row 2 sees no key at all
    {2, 77, 20, 8, 2, 64, true, true},    // GQA 4:1 (LLaMA)
    {2, 17, 5, 2, 1, 64, true, true},     // one partial tile
    {2, 64, 70, 2, 1, 64, true, true},    // prefix longer than a key tile
    {1, 300, 20, 2, 2, 64, true, false},  // long rows: most key tiles skip the mask, m tiles differ on the diagonal
    {3, 77, 20, 2, 2, 128, false, true},  // D = 128
    {1, 130, 0, 2, 1, 128, true, false},
    {2, 77, 20, 4, 2, 96, true, true},    // D = 96 (Phi-3): 6 k steps of 16, 12 copy chunks a row
    {2, 77, 20, 4, 2, 256, true, true},   // D = 256 (Gemma 3): GQA, prefix, ragged 32-row tiles, padding
    {1, 130, 0, 2, 2, 256, false, false},
    // Sliding windows (key j visible to query i iff P + i − j < window).
    {2, 130, 0, 2, 2, 64, true, true, 5},      // inside one tile; padded queries see no key at all
    {2, 130, 20, 2, 2, 64, true, true, 5},     // the prefix hidden from all but the first queries
    {1, 130, 0, 2, 2, 64, true, false, 37},    // cuts the diagonal tiles and the ones before them
    {2, 130, 20, 2, 1, 64, true, true, 37},    // late queries lose the prefix
    {1, 130, 20, 2, 2, 64, true, false, 70},   // spans tiles
    {1, 300, 0, 2, 2, 64, true, false, 64},    // tile-aligned; late blocks skip key tiles
    // Window ≡ P + 2 (mod 64): a query block's first visible key is the last
    // of a key tile, and a key block's last viewer the first of a query tile
    // (off-by-one in either sweep bound drops one of two visible keys).
    {1, 130, 0, 2, 2, 64, true, false, 2},
    {2, 77, 20, 8, 2, 64, true, true, 37},     // GQA 4:1
    {2, 64, 70, 2, 1, 64, true, true, 5},      // the first prefix key block seen by no query (dK, dV = 0)
    {1, 77, 20, 2, 2, 64, true, false, 1000},  // wider than the row: as no window
    {1, 130, 20, 2, 1, 128, true, true, 37},   // D = 128
    {2, 77, 20, 4, 2, 96, true, true, 40},     // D = 96
    {2, 77, 20, 4, 2, 256, true, true, 21},    // D = 256: 32-key tiles
};

INSTANTIATE_TEST_SUITE_P(Cases, FlashEmulated, ::testing::ValuesIn(kCases), [](const auto& info) {
  const Case& c = info.param;
  return "B" + std::to_string(c.b) + "_T" + std::to_string(c.t) + "_P" + std::to_string(c.p) + "_H" +
         std::to_string(c.h) + "_KV" + std::to_string(c.kvh) + "_D" + std::to_string(c.d) +
         (c.causal ? "_causal" : "_bidir") + (c.padded ? "_pad" : "") +
         (c.window ? "_window" + std::to_string(c.window) : "");
});

}  // namespace
}  // namespace ptune
