// The frozen heads that come with a checkpoint: the (tied) LM head, the
// BERT/RoBERTa masked-LM head and BERT's pooler. Forward keeps what
// backward needs in the caller's arena; backward accumulates into dhidden.
#pragma once

#include <vector>

#include "framework/core/arena.h"
#include "framework/model/transformer.h"

namespace ptune::model {

// logits (N, V) = hidden (N, C) · Eᵀ (+ bias), E the LM head or the tied
// word embeddings; for BERT/RoBERTa first dense → activation → LayerNorm.
class LmHead {
 public:
  explicit LmHead(const Transformer& model);
  void forward(const Tensor& logits, const Tensor& hidden, Arena& arena);
  void backward(const Tensor& dhidden, const Tensor& dlogits, Arena& arena);

 private:
  const ModelSpec& spec_;
  const HeadWeights& w_;
  const Tensor* decoder_;  // (V, C): the weight slot, so it follows the weights when they move or are sharded
  Tensor hidden_, dense_, act_, normed_, mean_, rstd_;  // saved (MLM transform)
};

// pooled (B, C) = tanh(first · Wᵀ + b), first (B, C) the hidden state of
// each sequence's first token (hidden[:, 0]).
class Pooler {
 public:
  explicit Pooler(const Transformer& model);
  void forward(const Tensor& pooled, const Tensor& first, Arena& arena);
  // dfirst (B, C) += ∂/∂first.
  void backward(const Tensor& dfirst, const Tensor& dpooled, Arena& arena);

 private:
  const HeadWeights& w_;
  Tensor dense_;  // (B, C) saved
};

// A *ForSequenceClassification checkpoint's frozen `score` head (LLaMA
// family, GPT-2): logits (B, labels) = hidden[b, last_b] · Wᵀ, last_b the
// rightmost token that is not padding, as transformers picks it.
class ScoreHead {
 public:
  explicit ScoreHead(const Transformer& model);
  int64_t labels() const { return w_->size(0); }
  // hidden (B, T, C); ids (B, T) i32 locate the last non-pad token (ids
  // undefined or no pad token: the last position).
  void forward(const Tensor& logits, const Tensor& hidden, const Tensor& ids, Arena& arena);
  void backward(const Tensor& dhidden, const Tensor& dlogits, Arena& arena);
  // transformers' index: argmax over t of t·[ids[b, t] ≠ pad] (0 if all pad).
  static int64_t last_token(const Tensor& ids, int64_t b, int64_t pad_token_id);

 private:
  const Tensor* w_;          // (labels, C): the weight slot (see LmHead::decoder_)
  int64_t pad_ = -1;
  std::vector<int64_t> last_;
  int64_t seq_ = 0;
};

}  // namespace ptune::model
