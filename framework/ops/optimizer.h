// The element math behind train/optimizer (AdamW) and train/clip (norm,
// finite check), over flat f32 buffers on any device; the scalars are
// formed once per step by the caller so every device does the same f32
// arithmetic (train/optimizer.h says how torch forms them).
#pragma once

#include "framework/core/tensor.h"

namespace ptune::ops {

// One AdamW step's f32 scalars, torch.optim.AdamW's (step t, lr, β1, β2,
// ε, wd rounded from double):
struct AdamWScalars {
  float decay_scale;    // 1 − lr·wd, applied where the decay mask is 1
  float w1;             // 1 − β1: the lerp weight of exp_avg toward the gradient
  float b2;             // β2
  float w2;             // 1 − β2
  float bc2_sqrt;       // √(1 − β2ᵗ)
  float eps;            // ε
  float neg_step_size;  // −lr / (1 − β1ᵗ)
};

// In place, element i of the (n) f32 buffers on one device:
//   m ← lerp(m, g, w1)               (torch's two-branch lerp, fused)
//   v ← v·b2 + (w2·g)·g              (fused)
//   p ← p·s + neg_step_size·m / (√v / bc2_sqrt + eps),
// s = decay_scale where decay_mask[i] != 0, else 1. decay_mask (n) f32
// holds 1 where weight decay applies; undefined = decay everywhere. Grads
// are read only. CPU and CUDA round every operation alike (no contraction
// beyond the two fused multiply-adds), so they agree to the bit.
void adamw_update(const Tensor& params, const Tensor& grads, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const Tensor& decay_mask, const AdamWScalars& scalars);

// Σ x² of an f32 tensor, each square and the sum in double, in an order
// fixed by the element count alone (the same bits on every run). A GPU
// tensor costs one host synchronisation.
double sum_squares(const Tensor& x);

// True when every element of an f32 tensor is finite (no NaN, no ±Inf).
// A GPU tensor costs one host synchronisation.
bool all_finite(const Tensor& x);

}  // namespace ptune::ops
