// The frozen heads that come with a checkpoint: the (tied) LM head, the
// BERT/RoBERTa masked-LM head and BERT's pooler. Forward keeps what
// backward needs in the caller's arena; backward accumulates into dhidden.
#pragma once

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
  Tensor decoder_;                          // (V, C)
  Tensor hidden_, dense_, act_, normed_, mean_, rstd_;  // saved (MLM transform)
};

// pooled (B, C) = tanh(hidden[:, 0] · Wᵀ + b).
class Pooler {
 public:
  explicit Pooler(const Transformer& model);
  void forward(const Tensor& pooled, const Tensor& hidden, Arena& arena);
  void backward(const Tensor& dhidden, const Tensor& dpooled, Arena& arena);

 private:
  const HeadWeights& w_;
  Tensor first_, dense_;  // (B, C) saved
};

}  // namespace ptune::model
