// Global-norm gradient clipping as torch.nn.utils.clip_grad_norm_, and the
// finite checks the trainer uses to skip a step.
#pragma once

#include <cmath>

#include "framework/core/parameters.h"
#include "framework/core/tensor.h"

namespace ptune::train {

// The L2 norm of all gradients together (params.grads()), on the device
// the set lives on, summed in double in an order fixed by the element count
// (ops::sum_squares): the same bits whatever the thread count. On a GPU the
// norm is copied back: one synchronisation of the default stream.
double grad_norm(const ParameterSet& params);

// Scales every gradient by clip_coef = max_norm / (total_norm + 1e-6) when
// that is < 1 (torch forms it in f32 from the f32 norm; so does this), and
// returns the pre-clip total norm. max_norm <= 0 only measures. A
// non-finite norm leaves the gradients untouched (torch would multiply
// them by NaN) so the caller can skip the step: check is_finite(result).
double clip_grad_norm(ParameterSet& params, double max_norm);

inline bool is_finite(double x) { return std::isfinite(x); }  // false for NaN and ±Inf
// True when every element of an f32 tensor (any device) is finite.
bool all_finite(const Tensor& t);

}  // namespace ptune::train
