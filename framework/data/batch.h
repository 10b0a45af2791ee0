// Examples → one padded batch of (B, T) int32 tensors, in arena memory.
//
// Sequences are padded on the right to the longest in the batch with the
// dataset's pad id (GPT-2 has no pad token: id 0, which attention_mask 0
// hides), type id 0, lm_labels and tags -100. Virtual tokens keep their negative
// ids (-(k+1)); the model's input layer replaces them with prompt rows.
// Everything lives in the caller's arena, so a training loop that resets
// its arena each step allocates nothing in the steady state.
#pragma once

#include <cstdint>
#include <span>

#include "framework/core/arena.h"
#include "framework/core/tensor.h"
#include "framework/data/dataset.h"

namespace ptune::data {

struct Batch {
  Tensor ids, type_ids, attention_mask;  // (B, T) i32
  Tensor labels;                         // (B) i32, kUnlabeled (-1) where an example has none
  Tensor mask_positions;                 // (B) i32, -1 where none
  Tensor lm_labels;                      // (B, T) i32, causal LM only (else undefined)
  Tensor tags;                           // (B, T) i32, token classification only: class or -100
  int64_t tokens = 0;                    // non-padding positions (virtual tokens included)
  // What the loss is normalized by: for a causal LM, the label tokens that
  // count after HF's shift (lm_labels[b, t] != -100 with t >= 1); else the
  // tagged tokens (token classification); else the examples with a label.
  int64_t label_tokens = 0;
  int64_t size() const { return ids.defined() ? ids.size(0) : 0; }
  int64_t length() const { return ids.defined() ? ids.size(1) : 0; }
};

// Builds `out` from dataset[indices[0]], …; an empty index list gives a
// (0, 0) batch (a rank whose slice of the last global batch is empty).
void collate(const Dataset& dataset, std::span<const int64_t> indices, Batch& out, Arena& arena);

}  // namespace ptune::data
