// Elementwise math the compiler can vectorise inside the CPU ops' loops.
// glibc's expf is a scalar call there (its SIMD variants are declared only
// under -ffast-math), so a loop of GELU, SiLU or softmax ran one element at
// a time; these are inline, branch-free (with -fno-trapping-math, which lets
// GCC turn the clamps into blends) and accurate to 2 ulp.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace ptune::ops {

// e^x = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln 2 / 2 (Cody–Waite:
// ln 2 split in two so n·ln 2 is exact), e^r by Cephes' degree-7 polynomial.
// x is clamped to [−87, 88], where 2^n stays a normal float: e^x below
// e^−87 ≈ 1.6e−38 returns that instead of a denormal or 0, above e^88 ≈
// 1.7e38 returns that instead of inf (every caller maps both ends to
// saturated values: 0 or 1 in a sigmoid, ±1 in a tanh). NaN stays NaN.
inline float exp_simd(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // Adding 1.5·2^23 rounds x/ln 2 to an integer held in the low mantissa bits.
  const float shifted = std::fma(x, 1.44269504088896341f, 12582912.0f);
  const float n = shifted - 12582912.0f;
  const int32_t ni = std::bit_cast<int32_t>(shifted) - 0x4B400000;
  float r = std::fma(n, -0.693359375f, x);
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  const float er = std::fma(p, r * r, r + 1.0f);
  return er * std::bit_cast<float>((ni + 127) << 23);
}

inline float sigmoid_simd(float x) { return 1.0f / (1.0f + exp_simd(-x)); }

// tanh through one exp: (1 − e^−2|u|) / (1 + e^−2|u|) with u's sign.
inline float tanh_simd(float u) {
  const float e = exp_simd(-2.0f * std::fabs(u));
  return std::copysign((1.0f - e) / (1.0f + e), u);
}

// erf, branch-free: below |x| = 0.8 its Taylor series to x^17 (truncation
// < 3e−9), above it Abramowitz & Stegun 7.1.26, 1 − t·P(t)·e^−x² with
// t = 1/(1 + p|x|) and x's sign (absolute error ≤ 1.5e−7; PyTorch's
// vectorised CPU erf, and so its GELU, uses it everywhere — near 0 its
// 1 − (≈1) cancels to a few 1e−7, hence the series there). glibc's erff is
// a scalar call, which made exact GELU the slowest part of a BERT MLP
// (MiniLM shape, 768 tokens: 11 of the fc1 GEMM's 15 ms).
inline float erf_simd(float x) {
  const float a = std::fabs(x), x2 = x * x;
  float s = 1.6462114365889246e-6f;
  s = std::fma(s, x2, -1.4925650358406250e-5f);
  s = std::fma(s, x2, 1.2055332981789664e-4f);
  s = std::fma(s, x2, -8.548327023450852e-4f);
  s = std::fma(s, x2, 5.223977625442188e-3f);
  s = std::fma(s, x2, -2.6866170645131252e-2f);
  s = std::fma(s, x2, 1.1283791670955126e-1f);
  s = std::fma(s, x2, -3.7612638903183754e-1f);
  s = std::fma(s, x2, 1.1283791670955126f);
  const float t = 1.0f / std::fma(0.3275911f, a, 1.0f);
  float p = 1.061405429f;
  p = std::fma(p, t, -1.453152027f);
  p = std::fma(p, t, 1.421413741f);
  p = std::fma(p, t, -0.284496736f);
  p = std::fma(p, t, 0.254829592f);
  const float tail = std::copysign(1.0f - p * t * exp_simd(-x2), x);
  return a < 0.8f ? x * s : tail;
}

}  // namespace ptune::ops
