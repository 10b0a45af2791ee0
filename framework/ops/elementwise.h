// Elementwise arithmetic and dropout.
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"

namespace ptune::ops {

// y = a + b (residual connections), same shapes.
void add_forward(const Tensor& y, const Tensor& a, const Tensor& b);
// dst += src.
void accumulate(const Tensor& dst, const Tensor& src);
// t *= s.
void scale_(const Tensor& t, float s);

// y = x · mask / (1 - p), mask_i = (philox_uniform(seed, offset + i) ≥ p).
// The mask is recomputed in backward, never stored.
void dropout_forward(const Tensor& y, const Tensor& x, float p, uint64_t seed, uint64_t offset);
// dx += dy · mask / (1 - p) with the same (seed, offset).
void dropout_backward(const Tensor& dx, const Tensor& dy, float p, uint64_t seed, uint64_t offset);

}  // namespace ptune::ops
