// Scaled dot-product attention with an optional KV prefix (prefix tuning,
// P-Tuning v2) and grouped-query heads.
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"
#include "framework/ops/grad_mode.h"

namespace ptune::ops {

enum class AttentionMask : uint8_t { kBidirectional, kCausal };

struct AttentionConfig {
  int64_t heads = 0;     // H query heads
  int64_t kv_heads = 0;  // KVH key/value heads; H % KVH == 0 (H for MHA)
  int64_t head_dim = 0;  // D
  AttentionMask mask = AttentionMask::kBidirectional;
  float scale = 1.0f;  // usually 1/√D
  // Sliding window (Mistral, Phi-3, Gemma 3's local layers; causal only):
  // 0 = none; else keys are numbered from 0 over the prefix then the T
  // tokens, query token i is key P + i, and it sees only keys j with
  // P + i − j < window (transformers' sliding_window_overlay on cache
  // positions), the prefix rows included.
  int64_t window = 0;

  int64_t q_width() const { return heads * head_dim; }
  int64_t kv_width() const { return kv_heads * head_dim; }
  int64_t qkv_width() const { return q_width() + 2 * kv_width(); }
};

// qkv (B, T, H·D + 2·KVH·D): per token the query heads, then the key heads,
// then the value heads (GPT-2's c_attn layout).
// prefix_k, prefix_v (P, KVH·D): virtual keys/values shared by the whole
// batch, always visible, never masked; undefined when there is no prefix.
// key_mask (B, T) i32: 1 for real tokens, 0 for padding; undefined = all real.
// Causal masking lets query i see real keys j ≤ i (and the whole prefix),
// within cfg.window of it when that is set.
// A query that sees no key at all gets a zero output.
// Writes out (B, T, H·D) and probs (B, H, T, P + T), kept for backward.
void attention_forward(const Tensor& out, const Tensor& probs, const Tensor& qkv, const Tensor& prefix_k,
                       const Tensor& prefix_v, const Tensor& key_mask, const AttentionConfig& cfg);

// The sizes of one call, checked once for every backend: B, T, P (0
// without a prefix) and S = P + T keys; `group` query heads share a kv head.
struct AttentionShape {
  int64_t batch, seq, prefix, keys, group;
};
// Checks qkv (B, T, qkv_width) and prefix_k (P, kv_width) against cfg,
// naming the mismatch.
AttentionShape attention_shape(const Tensor& qkv, const Tensor& prefix_k, const AttentionConfig& cfg);

// What attention_forward keeps for backward in `probs` (f32), by device:
// the CPU keeps the probabilities (B, H, T, P + T); CUDA's flash attention
// keeps only the row logsumexp and the key mask (no T × (P + T) matrix).
Shape attention_saved_shape(Device device, int64_t batch, int64_t seq, int64_t prefix, const AttentionConfig& cfg);
// Whether attention_backward needs its dscores scratch (the CPU does).
inline bool attention_needs_scores(Device device) { return device.is_cpu(); }

// dqkv (B, T, ·) += ∂L/∂qkv (= with GradMode::kWrite); dprefix_k,
// dprefix_v (P, KVH·D) += gradients summed over the batch (undefined when
// no prefix or not wanted).
// dscores (B, H, T, P + T) is scratch, overwritten.
// out (B, T, H·D) is the output attention_forward wrote for these inputs:
// CUDA takes the softmax-backward row term δ_i = Σ_j p_ij·dp_ij from it as
// Σ_d dout·out (FlashAttention's identity), saving a sweep over the keys;
// the CPU, which keeps the probabilities, ignores it.
void attention_backward(const Tensor& dqkv, const Tensor& dprefix_k, const Tensor& dprefix_v,
                        const Tensor& dscores, const Tensor& dout, const Tensor& out, const Tensor& qkv,
                        const Tensor& probs, const Tensor& prefix_k, const Tensor& prefix_v,
                        const AttentionConfig& cfg, GradMode mode = GradMode::kAdd);

}  // namespace ptune::ops
