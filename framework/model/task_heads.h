// Task heads: what turns the last hidden state into a loss. Heads own
// their trainable parameters (in the shared ParameterSet); the frozen LM/MLM
// head and pooler they use come with the checkpoint.
//
//   classification  BERT: pooler → dropout → classifier (K, C)
//                   RoBERTa: h[:, 0] → dropout → dense → tanh → dropout → out_proj
//                   GPT-2: score (K, C), no bias, on the last real token
//                   (the transformers *ForSequenceClassification heads; peft
//                   trains them as modules_to_save)
//   verbalizer      the frozen LM/MLM head at [MASK] (or, for decoders, the
//                   last real token), restricted to the label words
//   causal-lm       the frozen LM head everywhere, next-token loss where
//                   lm_labels ≠ −100
//   token-classification
//                   dropout → classifier (K, C) + bias on each tagged token
//                   (BERT, RoBERTa, GPT-2: `classifier`; LLaMA family:
//                   `score`), the *ForTokenClassification heads
#pragma once

#include <memory>
#include <vector>

#include "framework/core/arena.h"
#include "framework/core/mode.h"
#include "framework/core/parameters.h"
#include "framework/core/rng.h"
#include "framework/model/task.h"
#include "framework/model/transformer.h"

namespace ptune::model {

struct HeadBatch {
  Tensor attention_mask;  // (B, T) i32
  Tensor labels;          // (B) i32 class indices (classification, verbalizer)
  Tensor mask_positions;  // (B) i32, −1 = none (verbalizer)
  Tensor lm_labels;       // (B, T) i32, −100 = no loss (causal LM, unshifted)
  Tensor tags;            // (B, T) i32 class indices, −100 = no loss (token classification)
};

struct HeadOutput {
  // (B, K) class scores; (N, K) of the N tagged tokens in (b, t) order
  // (token classification); or (N, V) LM logits of the N labelled positions.
  Tensor scores;
  double loss_sum = 0;  // Σ over counted targets
  int64_t count = 0;    // targets counted (examples, or label tokens)
};

// A head reads a few rows of the last hidden state (the [CLS] or last
// token, the [MASK], the labelled or tagged tokens), so a step runs
//   rows = head.select(batch)            which rows, and the batch's targets
//   hidden = model forward on those rows (N, C)  (ModelInputs::rows)
//   head.forward(hidden) … head.backward(dhidden (N, C))
// and the model's last block computes only those rows past its attention.
class TaskHead {
 public:
  // Declares the head's parameters (before params.finalize()).
  static std::unique_ptr<TaskHead> create(const TaskOptions& options, const Transformer& model, int64_t num_labels,
                                          std::vector<int32_t> verbalizer_ids, ParameterSet& params);
  virtual ~TaskHead() = default;

  // transformers' _init_weights for new heads: N(0, 0.02), zero biases.
  virtual void init(Rng& rng) = 0;
  // The flat rows b·T + t of the (B, T) batch's last hidden state that
  // forward() reads, distinct, in the order it reads them; never empty: a
  // micro-batch without targets names row 0 (a sharded model runs on every
  // rank whatever its batch holds). Reads the batch's targets too: forward
  // and backward are about this batch until the next select().
  virtual const std::vector<int32_t>& select(const HeadBatch& batch) = 0;
  // hidden (N, C): the rows select() named, in its order. State for
  // backward stays in `arena`.
  virtual HeadOutput forward(const Tensor& hidden, Arena& arena, Mode mode, Rng& rng) = 0;
  // dhidden (N, C) += ∂(loss_scale · loss_sum)/∂hidden; parameter
  // gradients accumulate into the ParameterSet.
  virtual void backward(const Tensor& dhidden, float loss_scale, Arena& arena) = 0;
};

}  // namespace ptune::model
