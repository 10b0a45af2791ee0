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

// Per-head RMSNorm inside a row of fused projections (Qwen3's q_norm and
// k_norm, applied before RoPE): in qkv (N, W), the `heads` D-wide head
// vectors from column `col` on are normalised in place, y = x·rstd·w with
// w (D) shared by the heads. `saved` (N·heads, D) receives x and rstd
// (N·heads) the statistics, for the backward; heads and D are read from
// saved's shape. Columns outside [col, col + heads·D) are not touched. The
// same numbers as copying the heads out, norm_forward(kRmsNorm) and copying
// them back, in one pass.
void head_rms_norm_forward(const Tensor& qkv, int64_t col, const Tensor& saved, const Tensor& rstd, const Tensor& w,
                           float eps);
// Its backward, in place: those columns of dqkv (N, W) hold ∂L/∂y and are
// overwritten with ∂L/∂x. w is frozen (no dw).
void head_rms_norm_backward(const Tensor& dqkv, int64_t col, const Tensor& saved, const Tensor& rstd,
                            const Tensor& w);

// The head vectors of the two ops above, checked (errors name `op`): each
// of the n rows of x (N, W) holds `heads` vectors of d values from column
// col on; vector k = row·heads + h starts at row k / heads, column
// col + (k % heads)·d. Shared by the CPU and CUDA implementations.
struct HeadNormLayout {
  int64_t n, width, heads, d;
};
HeadNormLayout head_norm_layout(const char* op, const Tensor& x, int64_t col, const Tensor& saved,
                                const Tensor& rstd, const Tensor& w);

}  // namespace ptune::ops
