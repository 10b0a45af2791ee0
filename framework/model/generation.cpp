#include "framework/model/generation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "framework/core/arena.h"
#include "framework/model/heads.h"

namespace ptune::model {

int32_t pick_token(const float* logits, int64_t V, const GenerationOptions& o, Rng& rng) {
  if (!o.sample) return int32_t(std::max_element(logits, logits + V) - logits);  // first maximum, as torch.argmax
  PTUNE_CHECK(o.temperature > 0.0f, "generate: temperature must be positive, got {}", o.temperature);
  // Temperature, then top-k, then top-p (transformers' logits-warper order).
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = V;
  if (o.top_k > 0) keep = std::min(keep, o.top_k);
  std::vector<double> p(static_cast<size_t>(keep));
  const double top = double(logits[order[0]]) / o.temperature;
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i) sum += p[size_t(i)] = std::exp(double(logits[order[size_t(i)]]) / o.temperature - top);
  if (o.top_p < 1.0f) {
    // Smallest head of the sorted distribution whose mass reaches top_p (at least one token).
    double mass = 0;
    int64_t n = 0;
    while (n < keep) {
      mass += p[size_t(n)] / sum;
      ++n;
      if (mass >= double(o.top_p)) break;
    }
    keep = n;
    sum = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  }
  const double u = double(philox_uniform(rng.seed(), rng.reserve(1))) * sum;
  double acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[size_t(i)];
    if (u < acc) return order[size_t(i)];
  }
  return order[size_t(keep - 1)];
}

namespace {

bool is_eos(int32_t t, const GenerationOptions& o) {
  return std::find(o.eos_ids.begin(), o.eos_ids.end(), t) != o.eos_ids.end();
}

// Embeds [input_rows; ids] (1, R + n, C) into `out`.
Tensor embed(Transformer& model, const Tensor& rows, const int32_t* ids, int64_t n, Arena& arena) {
  const int64_t C = model.spec().hidden, R = rows.defined() ? rows.size(0) : 0;
  Tensor x = arena.alloc({1, R + n, C});
  if (R) x.select(0).slice(0, R).copy_from(rows);
  if (n) {
    Tensor t = arena.alloc({1, n}, DType::kI32);
    std::copy(ids, ids + n, t.data<int32_t>());
    Tensor e = arena.alloc({1, n, C});
    model.embed_tokens(e, t);
    x.select(0).slice(R, R + n).copy_from(e.select(0));
  }
  return x;
}

}  // namespace

std::vector<std::vector<int32_t>> generate(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerationPrompt& prompt, const GenerationOptions& o, Rng& rng) {
  const ModelSpec& spec = model.spec();
  PTUNE_CHECK(spec.is_decoder(), "generate: {} is not a decoder model", spec.arch_name());
  PTUNE_CHECK(o.max_new_tokens >= 0, "generate: max_new_tokens must be ≥ 0");
  const int64_t L = spec.layers, C = spec.hidden, V = spec.vocab_size;
  const int64_t KVW = spec.kv_heads * spec.head_dim, QW = spec.heads * spec.head_dim;
  const int64_t P0 = prompt.prefix ? prompt.prefix->length() : 0;
  const Tensor rows = prompt.input_rows;
  if (rows.defined()) check_tensor(rows, "input_rows", {rows.size(0), C});
  LmHead head(model);
  std::vector<std::vector<int32_t>> out;
  Arena arena;
  for (const std::vector<int32_t>& ids0 : prompts) {
    PTUNE_CHECK(!ids0.empty() || rows.defined() || P0 > 0, "generate: an empty prompt");
    std::vector<int32_t> seq = ids0;
    const int64_t R = rows.defined() ? rows.size(0) : 0;
    const int64_t capacity = P0 + R + int64_t(ids0.size()) + o.max_new_tokens;
    // The cache: per layer keys and values (capacity, KVW); rows [0, P0) the trained prefix.
    std::vector<Tensor> ck, cv;
    if (o.use_cache) {
      for (int64_t l = 0; l < L; ++l) {
        ck.push_back(Tensor::empty({capacity, KVW}, DType::kF32));
        cv.push_back(Tensor::empty({capacity, KVW}, DType::kF32));
        if (P0) {
          ck.back().slice(0, P0).copy_from(prompt.prefix->keys[size_t(l)]);
          cv.back().slice(0, P0).copy_from(prompt.prefix->values[size_t(l)]);
        }
      }
    }
    int64_t cached = P0;  // rows of the cache in use
    for (int64_t step = 0; step < o.max_new_tokens; ++step) {
      arena.reset();
      Tensor x;
      int64_t first_pos;  // position of x's first row
      KvPrefix past;
      if (o.use_cache) {
        // Step 0 feeds [rows; prompt]; later steps the one new token.
        const int64_t n = step == 0 ? int64_t(seq.size()) : 1;
        x = embed(model, step == 0 ? rows : Tensor(), seq.data() + seq.size() - n, n, arena);
        first_pos = cached;
        if (cached > 0)
          for (int64_t l = 0; l < L; ++l) {
            past.keys.push_back(ck[size_t(l)].slice(0, cached));
            past.values.push_back(cv[size_t(l)].slice(0, cached));
          }
      } else {
        x = embed(model, rows, seq.data(), int64_t(seq.size()), arena);
        first_pos = P0;
        if (P0) past = *prompt.prefix;
      }
      const int64_t T = x.size(1);
      Tensor pos = arena.alloc({1, T}, DType::kI32);
      for (int64_t t = 0; t < T; ++t) pos.data<int32_t>()[t] = int32_t(first_pos + t);
      ModelInputs in;
      in.input_embeds = x;
      in.position_ids = pos;
      in.prefix = past.keys.empty() ? nullptr : &past;
      Tensor hidden = model.forward(in, arena);
      if (o.use_cache) {
        // Append this chunk's (rotated) keys and values.
        for (int64_t l = 0; l < L; ++l) {
          const float* qkv = model.layer_qkv(l).data<float>();
          const int64_t W = QW + 2 * KVW;
          for (int64_t t = 0; t < T; ++t) {
            std::copy_n(qkv + t * W + QW, KVW, ck[size_t(l)].data<float>() + (cached + t) * KVW);
            std::copy_n(qkv + t * W + QW + KVW, KVW, cv[size_t(l)].data<float>() + (cached + t) * KVW);
          }
        }
        cached += T;
      }
      Tensor last = hidden.select(0).slice(T - 1, T);  // (1, C)
      Tensor logits = arena.alloc({1, V});
      head.forward(logits, last, arena);
      const int32_t next = pick_token(logits.data<float>(), V, o, rng);
      seq.push_back(next);
      if (is_eos(next, o)) break;
    }
    out.push_back(std::move(seq));
  }
  return out;
}

}  // namespace ptune::model
