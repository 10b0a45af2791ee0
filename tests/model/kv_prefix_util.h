// KV prefixes for the model tests: random keys and values per layer, and
// zeroed gradient buffers to accumulate into.
#pragma once

#include <cstdint>
#include <functional>

#include "framework/core/rng.h"
#include "framework/model/transformer.h"

namespace ptune::testing {

// L layers of (P, W) f32 keys and values, layer l's from Rng(l) and Rng(l + 100).
inline model::KvPrefix random_prefix(int64_t L, int64_t P, int64_t W) {
  model::KvPrefix prefix;
  for (int64_t l = 0; l < L; ++l) {
    Tensor k = Tensor::empty({P, W}, DType::kF32), v = Tensor::empty({P, W}, DType::kF32);
    Rng(uint64_t(l)).fill_normal(k, 0, 1);
    Rng(uint64_t(l + 100)).fill_normal(v, 0, 1);
    prefix.keys.push_back(k);
    prefix.values.push_back(v);
  }
  return prefix;
}

// Zeroed (P, W) gradients for the layers `wanted` accepts (all by default),
// undefined for the others (no gradient asked there).
inline model::KvPrefix zero_prefix_grads(int64_t L, int64_t P, int64_t W,
                                  const std::function<bool(int64_t)>& wanted = [](int64_t) { return true; }) {
  model::KvPrefix grads;
  for (int64_t l = 0; l < L; ++l) {
    grads.keys.push_back(wanted(l) ? Tensor::zeros({P, W}, DType::kF32) : Tensor());
    grads.values.push_back(wanted(l) ? Tensor::zeros({P, W}, DType::kF32) : Tensor());
  }
  return grads;
}

}  // namespace ptune::testing
