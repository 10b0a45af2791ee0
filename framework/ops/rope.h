// Rotary position embeddings (LLaMA family), applied in place to the query
// and key heads of a fused qkv buffer, in transformers' rotate_half layout.
#pragma once

#include "framework/core/tensor.h"
#include "framework/ops/attention.h"

namespace ptune::ops {

// qkv (B, T, H·D + 2·KVH·D), position_ids (B, T) i32, inv_freq (R/2) f32
// with R ≤ D the rotated width of a head (R = D but for Phi-3's
// partial_rotary_factor). For every query and key head and i < R/2, with
// a = pos · inv_freq[i], c = scale·cos a and s = scale·sin a:
//   (x_i, x_{i+R/2}) ← (x_i c − x_{i+R/2} s, x_{i+R/2} c + x_i s);
// columns R..D of a head pass through. `scale` is LongRoPE's attention
// factor (transformers' attention_scaling on cos and sin), 1 otherwise.
// Values are left alone; so is any KV prefix (prefix keys are not rotated).
void rope_forward(const Tensor& qkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg,
                  float scale = 1.0f);

// In place on dqkv (B, T, ·): ∂L/∂(rotated q, k) → ∂L/∂(q, k) before the
// rotation, i.e. the transposed rotation (the inverse when scale = 1).
// Value and pass-through columns untouched.
// (In place rather than `+=`: the rotation is a bijection of the buffer.)
void rope_backward(const Tensor& dqkv, const Tensor& position_ids, const Tensor& inv_freq, const AttentionConfig& cfg,
                   float scale = 1.0f);

}  // namespace ptune::ops
