// peft's prompt-tuning initialisations of a (P, C) prompt table from the
// frozen word embeddings (PromptTuningInit.SAMPLE_VOCAB / TEXT). RANDOM is
// the encoder's own init (N(0, 1), PromptEncoder::init).
#pragma once

#include <cstdint>
#include <vector>

#include "framework/core/rng.h"
#include "framework/core/tensor.h"

namespace ptune::peft {

// SAMPLE_VOCAB: row p of `table` (P, C) = word_embeddings (V, C) row id_p,
// id_p uniform in [0, V) (peft: torch.randint; ours: Philox, so the ids
// differ but the distribution is the same). Word embeddings of any dtype
// and device are converted to f32, as peft does. Returns the ids.
std::vector<int32_t> init_from_vocab(const Tensor& table, const Tensor& word_embeddings, Rng& rng);

// Row p of `table` = word_embeddings row ids[p]; ids.size() must be P and
// every id in [0, V) (the error names the offending position).
void init_from_token_ids(const Tensor& table, const Tensor& word_embeddings, const std::vector<int32_t>& ids);

// peft's TEXT rule: the ids of init_text — as peft gets them,
// tokenizer(init_text)["input_ids"], i.e. WITH the tokenizer's special
// tokens (BERT: [CLS] … [SEP]) — truncated to P when longer, repeated
// (whole copies, then truncated) when shorter. Empty text is an error.
std::vector<int32_t> text_init_ids(std::vector<int32_t> text_ids, int64_t num_virtual_tokens);

}  // namespace ptune::peft
