// LayerNorm and RMSNorm over the last dimension.
#pragma once

#include "framework/core/tensor.h"

namespace ptune::ops {

enum class NormKind : uint8_t { kLayerNorm, kRmsNorm };

// y (N, C) = norm(x) * w + b; saves rstd (N) and, for LayerNorm, mean (N)
// for the backward pass. b and mean are undefined for RMSNorm.
void norm_forward(NormKind kind, const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                  const Tensor& w, const Tensor& b, float eps);

// Residual add fused into the norm that reads it: sum (N, C) = residual + a
// (written: it is the block's new residual stream, which backward reads),
// then y (N, C) = norm(sum) * w + b with mean / rstd (N) as norm_forward.
// Equal to add_forward(sum, residual, a) followed by norm_forward(y ← sum)
// (sum is rounded to the storage dtype before it is normalised), but on
// CUDA it is one pass over the residual stream instead of two.
void residual_norm_forward(NormKind kind, const Tensor& y, const Tensor& sum, const Tensor& mean, const Tensor& rstd,
                           const Tensor& a, const Tensor& residual, const Tensor& w, const Tensor& b, float eps);

// dx (N, C) += ∂L/∂x. dw, db (C) += their gradients when defined (frozen
// norms pass undefined tensors).
void norm_backward(NormKind kind, const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& dy,
                   const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd);

}  // namespace ptune::ops
