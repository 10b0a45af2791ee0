// ModelSpec: everything about a checkpoint's architecture that the one
// transformer implementation needs, read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/ops/activation.h"
#include "framework/ops/attention.h"
#include "framework/ops/layernorm.h"

namespace ptune::model {

enum class Arch : uint8_t { kGpt2, kBert, kRoberta, kLlama, kMistral, kQwen2, kQwen3, kSmolLM3, kGemma3, kPhi3 };
Arch arch_from_name(const std::string& name);  // config.json's model_type
std::string arch_name(Arch arch);              // its model_type ("roberta" for the RoBERTa family)

// Where each block normalises: GPT-2 before attention/MLP (pre-LN), BERT
// after the residual add (post-LN).
enum class NormPlacement : uint8_t { kPre, kPost };

// How positions enter: learned table added to the embeddings (GPT-2, BERT)
// or rotary embeddings applied to queries and keys (LLaMA family).
enum class PositionKind : uint8_t { kLearned, kRope };

// transformers' rope_type values that ptune implements.
enum class RopeScaling : uint8_t { kNone, kLinear, kDynamic, kLlama3, kLongRope };

struct RopeSpec {
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_positions = 0;                     // llama3, dynamic, longrope
  // LongRoPE (Phi-3): per-frequency divisors (R/2 each), the long ones for
  // a batch reaching past original_max_positions; cos and sin are scaled
  // by attention_factor.
  std::vector<float> short_factor, long_factor;
  float attention_factor = 1.0f;
  double partial_rotary_factor = 1.0;  // the rotated share of a head (ModelSpec::rotary_dim)

  // Frequencies that depend on the batch's largest position (dynamic NTK,
  // LongRoPE's short / long factors): a KV cache keeps keys rotated with
  // the frequencies of their own step, so cached and uncached decoding
  // differ, in transformers as here.
  bool length_dependent() const { return scaling == RopeScaling::kDynamic || scaling == RopeScaling::kLongRope; }
};

struct ModelSpec {
  Arch arch = Arch::kGpt2;
  std::string model_type;  // config.json's "model_type"
  int64_t vocab_size = 0;
  int64_t hidden = 0;        // C
  int64_t layers = 0;        // L
  int64_t heads = 0;         // H
  int64_t kv_heads = 0;      // KVH (= H without grouped-query attention)
  int64_t head_dim = 0;      // D
  int64_t intermediate = 0;  // MLP width
  int64_t max_positions = 0;
  int64_t type_vocab_size = 0;  // 0: no token-type embeddings
  // First position id of a real token: RoBERTa counts from padding_idx + 1.
  int64_t position_offset = 0;
  int64_t pad_token_id = -1;
  float norm_eps = 1e-5f;
  ops::NormKind norm = ops::NormKind::kLayerNorm;
  NormPlacement placement = NormPlacement::kPre;
  ops::Activation activation = ops::Activation::kGeluTanh;
  ops::AttentionMask attention = ops::AttentionMask::kCausal;
  bool embedding_norm = false;  // LayerNorm right after the embeddings (BERT)
  bool final_norm = false;      // LayerNorm after the last block (GPT-2's ln_f)
  bool tie_word_embeddings = true;
  PositionKind positions = PositionKind::kLearned;
  RopeSpec rope;
  // Columns of a head that RoPE rotates (the first rotary_dim of D): D, or
  // int(D · partial_rotary_factor) for Phi-3 (Phi-4-mini: 96 of 128).
  int64_t rotary_dim = 0;
  // SmolLM3's no_rope_layers: layer l rotates its queries and keys iff
  // entry l is 1 (the others are NoPE layers). Empty: every layer does.
  std::vector<uint8_t> rope_layers;
  // Gemma 3: layers whose entry is 1 attend over a sliding window and
  // rotate with rope_local (its own base); the others with `rope`.
  std::vector<uint8_t> local_layers;
  RopeSpec rope_local;
  double query_pre_attn_scalar = 0;  // Gemma 3: the attention scale is its −½ power (0: head_dim's)
  // Gemma 3: norm weights w act as 1 + w (ModelWeights folds the 1 in at
  // load), each sub-block's output is normalised again before its residual
  // add (post_norms: post_attention_layernorm, post_feedforward_layernorm),
  // and word embeddings are scaled by √C (prompt rows are not: peft adds
  // them after the embedding layer).
  bool norm_plus_one = false;
  bool post_norms = false;
  float embed_scale = 1.0f;
  bool gated_mlp = false;      // SwiGLU: fc holds [gate; up] (2I, C), act = silu(gate)·up
  // Phi-3: the checkpoint stores q/k/v as one qkv_proj and gate/up as one
  // gate_up_proj, in ptune's own fused layouts.
  bool fused_projections = false;
  bool qkv_bias = true;        // q/k/v projections have biases (Qwen2: yes, LLaMA: attention_bias)
  bool proj_bias = true;       // attention output projection bias
  bool mlp_bias = true;
  // Qwen3, Gemma 3: each query and key head (D values) is RMS-normalised,
  // with weights q_norm / k_norm (D) shared by the heads, before RoPE.
  bool qk_norm = false;
  // Sliding-window attention (Mistral, Phi-3, Qwen2/Qwen3/SmolLM3 with
  // use_sliding_window, Gemma 3's local layers): a query sees the keys less
  // than this many cache positions back, the prefix's included
  // (ops::AttentionConfig::window); 0 = none. window_layers: 1 for the layers
  // that have it; empty = every layer.
  int64_t sliding_window = 0;
  std::vector<uint8_t> window_layers;
  float initializer_range = 0.02f;  // std of random init (transformers' _init_weights)

  // Parses config.json; errors name `origin` (the file) and the key.
  static ModelSpec from_config(const nlohmann::json& config, const std::string& origin);
  static ModelSpec from_directory(const std::string& dir);
  // A config.json that transformers loads (for `ptune init-model`).
  nlohmann::json to_config() const;
  // A small model of this architecture, for tests and the quickstart.
  static ModelSpec tiny(Arch arch);

  // The attention every layer shares (heads, widths, mask, scale), and
  // layer l's: the same with its sliding window, if it has one.
  ops::AttentionConfig attention_config() const;
  ops::AttentionConfig attention_config(int64_t l) const {
    ops::AttentionConfig a = attention_config();
    a.window = window(l);
    return a;
  }
  int64_t window(int64_t l) const {
    return window_layers.empty() || window_layers[size_t(l)] != 0 ? sliding_window : 0;
  }
  // RoPE inverse frequencies (rotary_dim/2) into `inv` (resized; reused by the
  // caller, so a training step allocates nothing) as transformers computes
  // them for a batch whose largest position id is max_position (dynamic
  // scaling depends on it); `local`: Gemma 3's sliding-window layers'.
  void rope_inv_freq(int64_t max_position, bool local, std::vector<float>& inv) const;
  bool is_local(int64_t l) const { return !local_layers.empty() && local_layers[size_t(l)] != 0; }
  bool is_llama_family() const {
    return arch == Arch::kLlama || arch == Arch::kMistral || arch == Arch::kQwen2 || arch == Arch::kQwen3 ||
           arch == Arch::kSmolLM3 || arch == Arch::kGemma3 || arch == Arch::kPhi3;
  }
  // Whether layer l applies RoPE to its queries and keys.
  bool rotates(int64_t l) const {
    return positions == PositionKind::kRope && (rope_layers.empty() || rope_layers[size_t(l)] != 0);
  }
  bool is_decoder() const { return attention == ops::AttentionMask::kCausal; }
  std::string arch_name() const { return model::arch_name(arch); }
};

}  // namespace ptune::model
