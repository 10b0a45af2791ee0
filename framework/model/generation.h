// Autoregressive decoding for decoder models (GPT-2, LLaMA family): greedy
// or sampled (temperature, top-k, top-p as transformers applies them, in
// that order), with a KV cache, stopping at EOS or max_new_tokens; the
// trained prompt of any method rides along (a KV prefix seeds the cache;
// input rows are prepended to every prompt).
#pragma once

#include <cstdint>
#include <vector>

#include "framework/core/rng.h"
#include "framework/model/transformer.h"

namespace ptune::model {

struct GenerationOptions {
  int64_t max_new_tokens = 32;
  bool sample = false;  // false: greedy (argmax)
  float temperature = 1.0f;
  int64_t top_k = 0;    // 0: off
  float top_p = 1.0f;   // 1: off
  std::vector<int32_t> eos_ids;  // stop once one is produced (it is kept)
  bool use_cache = true;  // false: recompute the whole sequence every step (reference / benchmark)
};

// The trained prompt, as PromptModel produces it.
struct GenerationPrompt {
  const KvPrefix* prefix = nullptr;  // prefix tuning / P-Tuning v2: (P, KVH·D) per layer; positions start at P
  Tensor input_rows;                 // prompt tuning / P-Tuning: (P, C) rows before the tokens, positions 0…P−1
};

// Continues each prompt (token ids) independently; returns prompt + new
// tokens per sequence. Sequences run one at a time, each with its own cache
// (no padding, so no masked cache rows). Runs where the model's weights
// live, in their dtype: the cache and the trained prompt go there too, and
// only each step's last logits come back to the host to pick the token.
std::vector<std::vector<int32_t>> generate(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerationPrompt& prompt, const GenerationOptions& options, Rng& rng);

// A prefix table (P, L·2·KVH·D), laid out as peft's PREFIX_TUNING
// prompt_embeddings (layer-major, each layer's keys then values), as the
// per-layer (P, KVH·D) keys and values of a KvPrefix, on the table's device.
KvPrefix split_prefix_table(const Tensor& table, const ModelSpec& spec);

// Picks the next token from logits (V) per the options (greedy or sampled).
int32_t pick_token(const float* logits, int64_t V, const GenerationOptions& options, Rng& rng);

}  // namespace ptune::model
