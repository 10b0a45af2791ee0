// Linear layers, weights laid out as torch.nn.Linear: (out, in).
#pragma once

#include "framework/core/tensor.h"
#include "framework/ops/activation.h"
#include "framework/ops/grad_mode.h"

namespace ptune::ops {

// y (N, out) = x (N, in) · wᵀ + bias (out). bias may be undefined.
void linear_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias);

// dx (N, in) += dy (N, out) · w (= with GradMode::kWrite: a GEMM with beta
// 0 that never reads dx). The only GEMM a frozen layer needs.
void linear_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, GradMode mode = GradMode::kAdd);

// The MLP's up-projection and its activation as one op, so a backend can
// fuse them (cuBLASLt's GELU_AUX_BIAS epilogue on CUDA):
// pre (N, out) = x (N, in) · wᵀ + bias (out); act (N, out) = f(pre). Both
// are written; backward needs pre. bias may be undefined.
void linear_activation_forward(Activation f, const Tensor& act, const Tensor& pre, const Tensor& x, const Tensor& w,
                               const Tensor& bias);

// Backward through y = f(pre) · wᵀ (+ b) down to pre, where w (out, in) is
// the *next* layer's weight (the MLP's down-projection):
// dpre (N, in) = f'(pre) ⊙ (dy (N, out) · w)   — WRITES dpre (=), unlike the
// other backward ops: a GEMM epilogue multiplies the whole GEMM output by
// f'(pre), so it cannot accumulate. dact (N, in), in dpre's dtype, is
// scratch for the unfused path (it receives dy · w there; its contents on
// return are unspecified) so no call allocates.
void linear_activation_backward_input(Activation f, const Tensor& dpre, const Tensor& dact, const Tensor& dy,
                                      const Tensor& w, const Tensor& pre);

// dw (out, in) += dyᵀ · x; dbias (out) += Σ_rows dy. For trainable layers
// only (heads, prompt encoders); dbias may be undefined.
void linear_backward_params(const Tensor& dw, const Tensor& dbias, const Tensor& dy, const Tensor& x);

}  // namespace ptune::ops
