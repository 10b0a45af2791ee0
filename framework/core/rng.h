// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
//
// A value is a pure function of (seed, offset + i): dropout masks and
// initialisations come out identical whatever the thread count, on CPU and
// GPU alike. A generator's whole state is (seed, offset), so checkpoints
// restore it exactly.
#pragma once

#include <array>
#include <cstdint>

#include "framework/core/tensor.h"

namespace ptune {

// One Philox block: four 32-bit words from a 64-bit key and 128-bit counter.
std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo);

// Uniform in [0, 1) from value `index` of stream `seed` (24-bit mantissa).
float philox_uniform(uint64_t seed, uint64_t index);

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}

  // Reserves n consecutive values; returns the first one's offset. Kernels
  // then draw value i as philox_uniform(seed(), base + i).
  uint64_t reserve(uint64_t n) {
    const uint64_t base = offset_;
    offset_ += n;
    return base;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }

  // Fills an f32 CPU tensor.
  void fill_uniform(Tensor& t, float low, float high);
  void fill_normal(Tensor& t, float mean, float stddev);

 private:
  uint64_t seed_;
  uint64_t offset_;
};

}  // namespace ptune
