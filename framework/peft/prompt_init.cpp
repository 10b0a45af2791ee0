#include "framework/peft/prompt_init.h"

#include <algorithm>

#include "framework/core/error.h"

namespace ptune::peft {

void init_from_token_ids(const Tensor& table, const Tensor& word_embeddings, const std::vector<int32_t>& ids) {
  PTUNE_CHECK(table.dim() == 2 && word_embeddings.dim() == 2 && table.size(1) == word_embeddings.size(1),
              "prompt init: table {} and word embeddings {} differ in width", table.shape().str(),
              word_embeddings.shape().str());
  const int64_t P = table.size(0), V = word_embeddings.size(0);
  PTUNE_CHECK(int64_t(ids.size()) == P, "prompt init: {} token ids for {} virtual tokens", ids.size(), P);
  for (int64_t p = 0; p < P; ++p) {
    const int64_t id = ids[size_t(p)];
    PTUNE_CHECK(id >= 0 && id < V, "prompt init: token id {} at position {} outside the vocabulary [0, {})", id, p, V);
    Tensor row = word_embeddings.slice(id, id + 1);
    if (!row.device().is_cpu()) row = row.to(Device::cpu());
    if (row.dtype() != DType::kF32) row = row.to(DType::kF32);
    table.slice(p, p + 1).copy_from(row);
  }
}

std::vector<int32_t> init_from_vocab(const Tensor& table, const Tensor& word_embeddings, Rng& rng) {
  const int64_t P = table.size(0), V = word_embeddings.size(0);
  PTUNE_CHECK(V > 0, "prompt init: empty word embeddings");
  const uint64_t base = rng.reserve(uint64_t(P));
  std::vector<int32_t> ids(static_cast<size_t>(P));
  for (int64_t p = 0; p < P; ++p) {
    const auto id = int64_t(double(philox_uniform(rng.seed(), base + uint64_t(p))) * double(V));
    ids[size_t(p)] = int32_t(std::min(id, V - 1));
  }
  init_from_token_ids(table, word_embeddings, ids);
  return ids;
}

std::vector<int32_t> text_init_ids(std::vector<int32_t> text_ids, int64_t num_virtual_tokens) {
  PTUNE_CHECK(!text_ids.empty(), "init_text tokenizes to no tokens");
  PTUNE_CHECK(num_virtual_tokens > 0, "num_virtual_tokens {} must be positive", num_virtual_tokens);
  const auto P = size_t(num_virtual_tokens);
  if (text_ids.size() < P) {
    // init_token_ids * ceil(P / n), then [:P]
    const size_t n = text_ids.size(), reps = (P + n - 1) / n;
    std::vector<int32_t> repeated;
    repeated.reserve(n * reps);
    for (size_t r = 0; r < reps; ++r) repeated.insert(repeated.end(), text_ids.begin(), text_ids.end());
    text_ids = std::move(repeated);
  }
  text_ids.resize(P);
  return text_ids;
}

}  // namespace ptune::peft
