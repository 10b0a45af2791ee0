#include "framework/model/generation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "framework/core/arena.h"
#include "framework/model/heads.h"
#include "framework/ops/elementwise.h"

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

KvPrefix split_prefix_table(const Tensor& table, const ModelSpec& spec) {
  const int64_t L = spec.layers, W = spec.kv_heads * spec.head_dim;
  PTUNE_CHECK(table.dim() == 2 && table.size(1) == L * 2 * W,
              "prefix table {}: expected (P, layers·2·kv width) = (P, {}·2·{})", table.shape().str(), L, W);
  KvPrefix prefix;
  for (int64_t l = 0; l < L; ++l)
    for (int kv = 0; kv < 2; ++kv) {
      Tensor t = Tensor::empty({table.size(0), W}, table.dtype(), table.device());
      ops::copy_columns(t, 0, table, (2 * l + kv) * W, W, false);
      (kv ? prefix.values : prefix.keys).push_back(t);
    }
  return prefix;
}

namespace {

bool is_eos(int32_t t, const GenerationOptions& o) {
  return std::find(o.eos_ids.begin(), o.eos_ids.end(), t) != o.eos_ids.end();
}

// t on the model's device in its activation dtype (a copy).
Tensor on_model(const Transformer& model, const Tensor& t) {
  return t.to(Device::cpu()).to(model.dtype()).to(model.device());
}

// Embeds [input_rows; ids] (1, R + n, C), on the model's device in its
// dtype; rows already are.
Tensor embed(Transformer& model, const Tensor& rows, const int32_t* ids, int64_t n, Arena& arena) {
  const int64_t C = model.spec().hidden, R = rows.defined() ? rows.size(0) : 0;
  Tensor x = arena.alloc({1, R + n, C}, model.dtype());
  if (R) x.select(0).slice(0, R).copy_from(rows);
  if (n) {
    Tensor t = Tensor::borrow(const_cast<int32_t*>(ids), {1, n}, DType::kI32);  // host ids, read only
    Tensor e = arena.alloc({1, n, C}, model.dtype());
    model.embed_tokens(e, arena.copy_of(t));
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
  if (prompt.input_rows.defined()) check_tensor(prompt.input_rows, "input_rows", {prompt.input_rows.size(0), C});
  // The trained prompt where the model runs, in its dtype.
  const Tensor rows = prompt.input_rows.defined() ? on_model(model, prompt.input_rows) : Tensor();
  KvPrefix prefix;
  for (int64_t l = 0; l < (P0 ? L : 0); ++l) {
    prefix.keys.push_back(on_model(model, prompt.prefix->keys[size_t(l)]));
    prefix.values.push_back(on_model(model, prompt.prefix->values[size_t(l)]));
  }
  LmHead head(model);
  std::vector<std::vector<int32_t>> out;
  Arena arena(model.device());
  for (const std::vector<int32_t>& ids0 : prompts) {
    PTUNE_CHECK(!ids0.empty() || rows.defined() || P0 > 0, "generate: an empty prompt");
    std::vector<int32_t> seq = ids0;
    const int64_t R = rows.defined() ? rows.size(0) : 0;
    const int64_t capacity = P0 + R + int64_t(ids0.size()) + o.max_new_tokens;
    // The cache: per layer keys and values (capacity, KVW); rows [0, P0) the trained prefix.
    std::vector<Tensor> ck, cv;
    if (o.use_cache) {
      for (int64_t l = 0; l < L; ++l) {
        ck.push_back(Tensor::empty({capacity, KVW}, model.dtype(), model.device()));
        cv.push_back(Tensor::empty({capacity, KVW}, model.dtype(), model.device()));
        if (P0) {
          ck.back().slice(0, P0).copy_from(prefix.keys[size_t(l)]);
          cv.back().slice(0, P0).copy_from(prefix.values[size_t(l)]);
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
        if (P0) past = prefix;
      }
      const int64_t T = x.size(1);
      Tensor pos = Tensor::empty({1, T}, DType::kI32);  // host: forward copies it over
      for (int64_t t = 0; t < T; ++t) pos.data<int32_t>()[t] = int32_t(first_pos + t);
      ModelInputs in;
      in.input_embeds = x;
      in.position_ids = pos;
      in.prefix = past.keys.empty() ? nullptr : &past;
      // Only the last row is read: the last block computes it alone past its attention.
      int32_t last_row = int32_t(T - 1);
      in.rows = Tensor::borrow(&last_row, {1}, DType::kI32);
      const Tensor last = model.forward(in, arena);  // (1, C)
      if (o.use_cache) {
        // Append this chunk's (rotated) keys and values: columns of qkv (T, W).
        for (int64_t l = 0; l < L; ++l) {
          const Tensor qkv = model.layer_qkv(l).view({T, QW + 2 * KVW});
          ops::copy_columns(ck[size_t(l)].slice(cached, cached + T), 0, qkv, QW, KVW, false);
          ops::copy_columns(cv[size_t(l)].slice(cached, cached + T), 0, qkv, QW + KVW, KVW, false);
        }
        cached += T;
      }
      Tensor logits = arena.alloc({1, V}, model.dtype());
      head.forward(logits, last, arena);
      // Picked on the host in f32 (a copy unless the model runs there in f32).
      const bool host_f32 = logits.device().is_cpu() && logits.dtype() == DType::kF32;
      const Tensor host_logits = host_f32 ? logits : logits.to(Device::cpu()).to(DType::kF32);
      const int32_t next = pick_token(host_logits.data<float>(), V, o, rng);
      seq.push_back(next);
      if (is_eos(next, o)) break;
    }
    out.push_back(std::move(seq));
  }
  return out;
}

}  // namespace ptune::model
