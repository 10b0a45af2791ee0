// PromptModel: a frozen transformer driven by one prompt source
// (DESIGN.md §1). The encoder turns trainable parameters into either input
// embedding rows or per-layer (K, V) prefixes; the frozen model consumes
// them; backward returns d(rows) or d(K, V) to the encoder. Nothing else
// knows which of the four methods is running.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "framework/core/arena.h"
#include "framework/core/parameters.h"
#include "framework/core/rng.h"
#include "framework/model/transformer.h"
#include "framework/peft/encoders.h"
#include "framework/peft/prompt_config.h"

namespace ptune::peft {

class PromptModel {
 public:
  // Declares the prompt's parameters in `params` (before finalize()).
  PromptModel(const PromptConfig& config, model::Transformer& model, ParameterSet& params);

  // After params.finalize(): the method's initialisation. `text_ids` are
  // the tokenized init_text (PromptInit::kText only). Runs on the CPU, before
  // the model and the parameters move to a GPU.
  void init(Rng& rng, const std::vector<int32_t>& text_ids = {});

  // ids, type_ids, attention_mask (B, T) i32; virtual tokens are ids
  // −1…−P (input placement). type_ids may be undefined. Returns the last
  // hidden state (B, T, C) on the model's device in its dtype — or only the
  // flat rows b·T + t that `rows` names, (N, C) (a task head's
  // TaskHead::select; model::ModelInputs::rows) — and state for backward
  // stays in `arena` (on that device). The inputs are host tensors.
  Tensor forward(const Tensor& ids, const Tensor& type_ids, const Tensor& attention_mask, Arena& arena, Mode mode,
                 Rng& rng, std::span<const int32_t> rows = {});
  // Accumulates the prompt parameters' gradients from dhidden, shaped as
  // forward's result.
  void backward(const Tensor& dhidden, Arena& arena);

  // The prompt as peft saves it (`prompt_embeddings`): the encoder's output
  // (P, W) in eval mode — (P, C) rows, or (P, Lp·2·KVH·D) prefixes — on the host.
  Tensor prompt_embeddings(Arena& arena);

  const PromptConfig& config() const { return config_; }
  model::Transformer& model() { return model_; }
  const model::Transformer& model() const { return model_; }
  PromptEncoder& encoder() { return *encoder_; }
  int64_t virtual_tokens() const { return config_.num_virtual_tokens; }
  const std::vector<int64_t>& prefix_layers() const { return layers_; }  // KV placement only

 private:
  void split_prefix(const Tensor& prompt, Arena& arena);

  PromptConfig config_;
  model::Transformer& model_;
  std::unique_ptr<PromptEncoder> encoder_;
  std::vector<int64_t> layers_;  // model layers that hold a prefix, in encoder-slot order

  // Saved by forward for backward.
  Tensor ids_, prompt_;  // on the model's device
  std::vector<int32_t> host_positions_;
  model::KvPrefix prefix_;
  bool dropout_applied_ = false;
  uint64_t dropout_seed_ = 0, dropout_offset_ = 0;
};

}  // namespace ptune::peft
