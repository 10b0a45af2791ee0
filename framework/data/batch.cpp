#include "framework/data/batch.h"

#include <algorithm>

namespace ptune::data {

void collate(const Dataset& dataset, std::span<const int64_t> indices, Batch& out, Arena& arena) {
  const int64_t B = int64_t(indices.size());
  int64_t T = 0;
  for (int64_t i : indices) {
    PTUNE_CHECK(i >= 0 && i < dataset.size(), "{}: example index {} out of range [0, {})", dataset.origin(), i,
                dataset.size());
    T = std::max(T, int64_t(dataset[i].ids.size()));
  }
  const bool lm = dataset.task() == model::TaskKind::kCausalLm;
  const bool tagged = dataset.task() == model::TaskKind::kTokenClassification;
  out.ids = arena.alloc({B, T}, DType::kI32);
  out.type_ids = arena.alloc({B, T}, DType::kI32);
  out.attention_mask = arena.alloc({B, T}, DType::kI32);
  out.labels = arena.alloc({B}, DType::kI32);
  out.mask_positions = arena.alloc({B}, DType::kI32);
  out.lm_labels = lm ? arena.alloc({B, T}, DType::kI32) : Tensor();
  out.tags = tagged ? arena.alloc({B, T}, DType::kI32) : Tensor();
  out.tokens = 0;
  out.label_tokens = 0;
  if (B == 0) return;
  int32_t* ids = out.ids.data<int32_t>();
  int32_t* types = out.type_ids.data<int32_t>();
  int32_t* mask = out.attention_mask.data<int32_t>();
  int32_t* lml = lm ? out.lm_labels.data<int32_t>() : nullptr;
  int32_t* tags = tagged ? out.tags.data<int32_t>() : nullptr;
  const int32_t pad = dataset.pad_id();
  for (int64_t b = 0; b < B; ++b) {
    const Example& ex = dataset[indices[size_t(b)]];
    const int64_t n = int64_t(ex.ids.size());
    const size_t row = size_t(b * T);
    std::copy(ex.ids.begin(), ex.ids.end(), ids + row);
    std::fill(ids + row + n, ids + row + T, pad);
    std::copy(ex.type_ids.begin(), ex.type_ids.end(), types + row);
    std::fill(types + row + n, types + row + T, 0);
    std::fill(mask + row, mask + row + n, 1);
    std::fill(mask + row + n, mask + row + T, 0);
    if (lm) {
      std::copy(ex.lm_labels.begin(), ex.lm_labels.end(), lml + row);
      std::fill(lml + row + n, lml + row + T, kIgnoreIndex);
      for (int64_t t = 1; t < n; ++t) out.label_tokens += ex.lm_labels[size_t(t)] != kIgnoreIndex;
    } else if (tagged) {
      std::copy(ex.tags.begin(), ex.tags.end(), tags + row);
      std::fill(tags + row + n, tags + row + T, kIgnoreIndex);
      out.label_tokens += std::count_if(ex.tags.begin(), ex.tags.end(), [](int32_t y) { return y >= 0; });
    } else {
      out.label_tokens += ex.label >= 0;
    }
    out.labels.data<int32_t>()[b] = ex.label;
    out.mask_positions.data<int32_t>()[b] = ex.mask_position;
    out.tokens += n;
  }
}

}  // namespace ptune::data
