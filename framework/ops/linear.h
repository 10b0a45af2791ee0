// Linear layers, weights laid out as torch.nn.Linear: (out, in).
#pragma once

#include "framework/core/tensor.h"

namespace ptune::ops {

// y (N, out) = x (N, in) · wᵀ + bias (out). bias may be undefined.
void linear_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias);

// dx (N, in) += dy (N, out) · w. The only GEMM a frozen layer needs.
void linear_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w);

// dw (out, in) += dyᵀ · x; dbias (out) += Σ_rows dy. For trainable layers
// only (heads, prompt encoders); dbias may be undefined.
void linear_backward_params(const Tensor& dw, const Tensor& dbias, const Tensor& dy, const Tensor& x);

}  // namespace ptune::ops
