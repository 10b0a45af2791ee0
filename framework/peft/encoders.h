// Prompt encoders: trainable parameters → the prompt rows the frozen model
// consumes, out (P, W). W = C (the hidden size) for input placement, or
// W = Lp·2·C' for a KV prefix (peft's layout: layer slot l's keys at
// columns [2l·C', (2l+1)·C'), its values at [(2l+1)·C', (2l+2)·C'), head h
// at [h·D, (h+1)·D) inside).
//
// Each encoder reproduces a peft 0.21.2 module on the indices arange(P):
//   Encoder::kNone      PromptEmbedding / PrefixEncoder without projection:
//                       embedding.weight (P, W) is the prompt.
//   Encoder::kPrefixMlp PrefixEncoder(prefix_projection=True):
//                       embedding (P, C) → transform.0 Linear(C, E) → tanh
//                       → transform.2 Linear(E, W).
//   Encoder::kMlp       PromptEncoder MLP: embedding (P, C) → mlp_head.0
//                       Linear(C, E) → ReLU → .2 Linear(E, E) → ReLU →
//                       .4 Linear(E, W). No dropout (peft has none), and
//                       encoder_layers is ignored (peft always uses 3 Linear).
//   Encoder::kLstm      PromptEncoder LSTM: embedding (P, C) → lstm_head
//                       LSTM(C, E, encoder_layers, bidirectional, dropout =
//                       encoder_dropout between layers) → mlp_head.0
//                       Linear(2E, 2E) → ReLU → .2 Linear(2E, W).
// E = encoder_hidden, or token_dim when 0 (peft sets encoder_hidden_size =
// token_dim when unset, for prefix tuning and P-Tuning alike). All Linear
// layers have biases.
//
// Parameter names are `prefix` + peft's state_dict keys inside the module
// ("embedding.weight", "transform.0.weight", "lstm_head.weight_ih_l0_reverse",
// "mlp_head.4.bias", …); names containing "bias" are Decay::kExempt, as in
// transformers' Trainer.
//
// peft runs the encoder on a (B, P) batch of identical index rows; every
// row gives the same prompt (dropout off), so the prompt is computed once
// and the caller sums dout over the batch. With encoder_dropout > 0 and
// Mode::kTrain, peft draws an independent LSTM dropout mask per batch row;
// ptune draws one per step.
//
// Forward writes (=); backward accumulates (+=) into params.grad(…).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "framework/core/arena.h"
#include "framework/core/mode.h"
#include "framework/core/parameters.h"
#include "framework/core/rng.h"
#include "framework/core/tensor.h"
#include "framework/peft/prompt_config.h"

namespace ptune::peft {

// Training applies the encoder's dropout (LSTM between layers); evaluation
// never does.

struct EncoderDims {
  int64_t virtual_tokens = 0;  // P
  // peft's token_dim: the hidden size C for input placement; for a KV
  // prefix on a model whose config has num_key_value_heads, peft uses
  // C' = kv_heads·head_dim instead (the width of the embedding that feeds
  // the prefix MLP, and the default encoder_hidden).
  int64_t token_dim = 0;
  int64_t out_width = 0;  // W
};

class PromptEncoder {
 public:
  // Declares the encoder's parameters in `params` (before params.finalize());
  // `params` must outlive the encoder.
  static std::unique_ptr<PromptEncoder> create(const PromptConfig& cfg, const EncoderDims& dims,
                                               ParameterSet& params, const std::string& prefix = "prompt_encoder.");
  virtual ~PromptEncoder() = default;

  // torch's default initialisations (after params.finalize()), drawn from
  // our Rng: nn.Embedding N(0, 1); nn.Linear weight and bias U(±1/√fan_in)
  // (kaiming_uniform with a = √5); nn.LSTM every tensor U(±1/√E).
  virtual void init(Rng& rng) = 0;

  // out (P, W) = the prompt. Keeps what backward needs in `arena` (valid
  // until arena.reset()). In Mode::kTrain with dropout, `rng` supplies the
  // masks (and must be given); it is not touched otherwise.
  virtual void forward(const Tensor& out, Arena& arena, Mode mode = Mode::kEval, Rng* rng = nullptr) = 0;
  // Accumulates parameter gradients from dout (P, W), for the last forward.
  virtual void backward(const Tensor& dout, Arena& arena) = 0;

  // The embedding table parameter: (P, W) for kNone, else (P, token_dim).
  // Prompt-tuning inits (prompt_init.h) write it; export reads it.
  Tensor embedding() const { return params_.value(embedding_); }
  size_t embedding_index() const { return embedding_; }
  const EncoderDims& dims() const { return dims_; }

 protected:
  PromptEncoder(ParameterSet& params, const EncoderDims& dims) : params_(params), dims_(dims) {}
  ParameterSet& params_;
  EncoderDims dims_;
  size_t embedding_ = 0;
};

// The encoder width E that peft uses: encoder_hidden, or token_dim when 0.
int64_t encoder_hidden(const PromptConfig& cfg, const EncoderDims& dims);

}  // namespace ptune::peft
