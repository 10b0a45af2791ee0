// The gated MLP activation of the LLaMA family: silu(gate) · up.
#pragma once

#include "framework/core/tensor.h"
#include "framework/ops/activation.h"
#include "framework/ops/grad_mode.h"

namespace ptune::ops {

// x (N, 2I) holds per row the gate projection (columns [0, I)) then the up
// projection ([I, 2I)); y (N, I) = f(gate) · up, f usually kSilu.
void gated_forward(Activation f, const Tensor& y, const Tensor& x);
// dx (N, 2I) += ∂L/∂x for dy (N, I) (= with GradMode::kWrite: both halves
// of every row are written, dx is never read).
void gated_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x,
                    GradMode mode = GradMode::kAdd);

}  // namespace ptune::ops
