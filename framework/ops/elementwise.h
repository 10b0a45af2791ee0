// Elementwise arithmetic and dropout.
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"

namespace ptune::ops {

// y = a + b (residual connections), same shapes.
void add_forward(const Tensor& y, const Tensor& a, const Tensor& b);
// dst += src.
void accumulate(const Tensor& dst, const Tensor& src);
// dst = src converted between f32 and bf16 (same numel): the boundary
// between the f32 trainable modules and a bf16 frozen model.
void convert(const Tensor& dst, const Tensor& src);
// Column blocks of row-major matrices dst (N, ·) and src (N, ·): for every
// row r, dst[r, dst_col : dst_col + width] = (or += with accumulate)
// src[r, src_col : src_col + width], converting f32 ↔ bf16. Splits a
// (P, Lp·2·W) prefix prompt into per-layer (P, W) keys and values, and
// gathers their gradients back.
void copy_columns(const Tensor& dst, int64_t dst_col, const Tensor& src, int64_t src_col, int64_t width,
                  bool accumulate);
// t *= s.
void scale_(const Tensor& t, float s);

// y = x · mask / (1 - p), mask_i = (philox_uniform(seed, offset + i) ≥ p).
// The mask is recomputed in backward, never stored.
void dropout_forward(const Tensor& y, const Tensor& x, float p, uint64_t seed, uint64_t offset);
// dx += dy · mask / (1 - p) with the same (seed, offset).
void dropout_backward(const Tensor& dx, const Tensor& dy, float p, uint64_t seed, uint64_t offset);

}  // namespace ptune::ops
