// Softmax cross-entropy over the last dimension, with an ignore index.
#pragma once

#include "framework/core/tensor.h"

namespace ptune::ops {

constexpr int32_t kIgnoreIndex = -100;

// losses (N) = logsumexp(logits_i) - logits_i[target_i], 0 where target_i
// is kIgnoreIndex; lse (N) is saved for backward. logits (N, V), targets
// (N) i32. Returns the number of targets that are not ignored; the caller
// normalises (by the global count, in data-parallel runs).
int64_t cross_entropy_forward(const Tensor& losses, const Tensor& lse, const Tensor& logits,
                              const Tensor& targets);

// dlogits (N, V) += scale · (softmax(logits) - onehot(target)) on rows
// whose target is not ignored; scale is ∂L/∂(Σ losses).
void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                            const Tensor& targets, float scale);

}  // namespace ptune::ops
