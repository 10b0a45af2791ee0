// Embedding lookups. ids are i32.
#pragma once

#include "framework/core/tensor.h"

namespace ptune::ops {

// out (N, C) = table (V, C)[ids (N)]. An id outside [0, V) is an error.
void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table);
// out (N, C) += table (V, C)[ids (N)] (position and token-type embeddings).
void embedding_add(const Tensor& out, const Tensor& ids, const Tensor& table);
// dtable (V, C)[ids[i]] += dout (N, C)[i]. For trainable tables only.
void embedding_backward(const Tensor& dtable, const Tensor& dout, const Tensor& ids);
// dst (R, C)[rows[i]] += src (N, C)[i] in dst's dtype, rows distinct (no
// two adds meet, so no atomics): the backward of gathering some rows of
// activations with embedding_forward (a head that reads a few positions of
// the hidden states). A row outside [0, R) is an error; on the CPU a
// repeated row too.
void scatter_add_rows(const Tensor& dst, const Tensor& src, const Tensor& rows);

// Input embeddings with virtual tokens (prompt tuning, P-Tuning): ids ≥ 0
// read table (V, C), times table_scale (Gemma's √C word scaling); id −(k+1)
// reads row k of prompt (P, C), unscaled. out (N, C) = those rows.
void prompt_embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table, const Tensor& prompt,
                              float table_scale = 1.0f);
// dprompt (P, C)[k] += Σ dout rows whose id is −(k+1); word rows are frozen.
void prompt_embedding_backward(const Tensor& dprompt, const Tensor& dout, const Tensor& ids);

}  // namespace ptune::ops
