#include "framework/core/rng.h"

#include <cmath>

namespace ptune {

std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = uint32_t(counter_lo), c1 = uint32_t(counter_lo >> 32);
  uint32_t c2 = uint32_t(counter_hi), c3 = uint32_t(counter_hi >> 32);
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kM0) * c0;
    const uint64_t p1 = uint64_t(kM1) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = uint32_t(p1);
    c2 = n2;
    c3 = uint32_t(p0);
    k0 += kW0;
    k1 += kW1;
  }
  return {c0, c1, c2, c3};
}

namespace {

// The top 24 bits of a Philox word as a float in [0, 1).
float unit(uint32_t word) { return float(word >> 8) * (1.0f / 16777216.0f); }

// philox_uniform(seed, index) for increasing indices, one Philox block per
// 4 of them instead of one per value: the fills below walk consecutive
// indices, and the rounds were most of a model's random init (the
// uniforms are the same, bit for bit).
class Uniforms {
 public:
  explicit Uniforms(uint64_t seed) : seed_(seed) {}
  float operator()(uint64_t index) {
    if (!filled_ || index >> 2 != block_) {
      block_ = index >> 2;
      words_ = philox4x32(seed_, 0, block_);
      filled_ = true;
    }
    return unit(words_[index & 3]);
  }

 private:
  uint64_t seed_, block_ = 0;
  std::array<uint32_t, 4> words_{};
  bool filled_ = false;
};

}  // namespace

float philox_uniform(uint64_t seed, uint64_t index) {
  // Four values per block: index / 4 picks the block, index % 4 the word.
  return unit(philox4x32(seed, 0, index >> 2)[index & 3]);
}

void Rng::fill_uniform(Tensor& t, float low, float high) {
  float* p = t.data<float>();
  const int64_t n = t.numel();
  const uint64_t base = reserve(uint64_t(n));
#pragma omp parallel
  {
    Uniforms u(seed_);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = low + (high - low) * u(base + uint64_t(i));
  }
}

void Rng::fill_normal(Tensor& t, float mean, float stddev) {
  float* p = t.data<float>();
  const int64_t n = t.numel();
  const uint64_t base = reserve(uint64_t(2 * n));
#pragma omp parallel
  {
    Uniforms u(seed_);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      // Box-Muller on two independent uniforms; 1 - u keeps log away from 0.
      const float u1 = 1.0f - u(base + 2 * uint64_t(i));
      const float u2 = u(base + 2 * uint64_t(i) + 1);
      p[i] = mean + stddev * std::sqrt(-2.0f * std::log(u1)) * std::cos(6.28318530718f * u2);
    }
  }
}

}  // namespace ptune
