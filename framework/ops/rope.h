// Rotary position embeddings (LLaMA family), applied in place to the query
// and key heads of a fused qkv buffer, in transformers' rotate_half layout.
#pragma once

#include "framework/core/tensor.h"
#include "framework/ops/attention.h"

namespace ptune::ops {

// qkv (B, T, H·D + 2·KVH·D), position_ids (B, T) i32, inv_freq (D/2) f32.
// For every query and key head and i < D/2, with a = pos · inv_freq[i]:
//   (x_i, x_{i+D/2}) ← (x_i cos a − x_{i+D/2} sin a, x_{i+D/2} cos a + x_i sin a).
// Values are left alone; so is any KV prefix (prefix keys are not rotated).
void rope_forward(const Tensor& qkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg);

// In place on dqkv (B, T, ·): ∂L/∂(rotated q, k) → ∂L/∂(q, k) before the
// rotation, i.e. the inverse (transposed) rotation. Value columns untouched.
// (In place rather than `+=`: the rotation is a bijection of the buffer.)
void rope_backward(const Tensor& dqkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg);

}  // namespace ptune::ops
