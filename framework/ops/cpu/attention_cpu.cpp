// Attention on the CPU: one (batch, head) pair per OpenMP iteration, BLAS
// on strided views of qkv (no head permutes). Scores are materialised as
// probs (B, H, T, P+T): the readable reference for the CUDA flash kernels.
#include <algorithm>
#include <cmath>

#include "framework/ops/attention.h"
#include "framework/ops/cpu/gemm_cpu.h"
#include "framework/ops/cpu/vec_math.h"
#include "framework/ops/dispatch.h"

namespace ptune::ops {

using cpu::gemm;
using cpu::Trans;

namespace {

struct Layout {
  int64_t batch, seq, prefix, keys;  // B, T, P, P + T
  int64_t heads, kv_heads, head_dim, group;
  int64_t qkv_width, q_width, kv_width;

  // Offsets inside the qkv row of a token.
  int64_t q_offset(int64_t h) const { return h * head_dim; }
  int64_t k_offset(int64_t h) const { return q_width + (h / group) * head_dim; }
  int64_t v_offset(int64_t h) const { return q_width + kv_width + (h / group) * head_dim; }
  int64_t prefix_offset(int64_t h) const { return (h / group) * head_dim; }
};

Layout make_layout(const Tensor& qkv, const Tensor& prefix_k, const AttentionConfig& cfg) {
  const AttentionShape shape = attention_shape(qkv, prefix_k, cfg);
  return {shape.batch,  shape.seq,   shape.prefix,    shape.keys,    cfg.heads,     cfg.kv_heads,
          cfg.head_dim, shape.group, cfg.qkv_width(), cfg.q_width(), cfg.kv_width()};
}

// Softmax of one score row (P + T keys) in place; keys the query cannot see
// get probability 0. A query sees the keys from `first` on (0, or the
// start of its sliding window: AttentionConfig::window) among the P prefix
// keys and the first `seen` token keys (its own and earlier ones when
// causal, all T otherwise) whose key_mask is set (kMasked: a mask is
// given). Branch-free loops, so they vectorise (the reductions through
// `omp simd`; a row's order of summation is fixed, so the result is
// reproducible).
template <bool kMasked>
void softmax_row(float* row, int64_t P, int64_t T, const int32_t* key_mask, int64_t first, int64_t seen) {
  float* tokens = row + P;
  auto hidden = [&](int64_t t) { return kMasked && key_mask[t] == 0; };
  const int64_t first_prefix = std::min(first, P), first_token = std::min(std::max<int64_t>(first - P, 0), seen);
  std::fill(row, row + first_prefix, 0.0f);
  std::fill(tokens, tokens + first_token, 0.0f);
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t j = first_prefix; j < P; ++j) mx = std::max(mx, row[j]);
#pragma omp simd reduction(max : mx)
  for (int64_t t = first_token; t < seen; ++t) mx = std::max(mx, hidden(t) ? -INFINITY : tokens[t]);
  if (mx == -INFINITY) {
    std::fill(row, row + P + T, 0.0f);
    return;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = first_prefix; j < P; ++j) {
    row[j] = exp_simd(row[j] - mx);
    sum += row[j];
  }
#pragma omp simd reduction(+ : sum)
  for (int64_t t = first_token; t < seen; ++t) {
    const float e = exp_simd(tokens[t] - mx);
    tokens[t] = hidden(t) ? 0.0f : e;
    sum += tokens[t];
  }
  std::fill(tokens + seen, tokens + T, 0.0f);
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < P + seen; ++j) row[j] *= inv;
}

void masked_softmax_row(float* row, int64_t P, int64_t T, const int32_t* key_mask, int64_t first, int64_t seen) {
  if (key_mask) softmax_row<true>(row, P, T, key_mask, first, seen);
  else softmax_row<false>(row, P, T, nullptr, first, seen);
}

// Causal attention runs in blocks of query rows: rows [i0, i0 + rows) see
// at most the first i0 + rows token keys, so no GEMM computes scores above
// the diagonal block (at sequence 512, 44% of the token-key work), and with
// a sliding window none of the keys before the window of the block's first
// query, P + i0 − window + 1 (later rows' windows start later), prefix rows
// included. Bidirectional attention is one block. Calls f(i0, rows, pf, tf,
// keys): the block's scores are those of prefix keys [pf, P) and token keys
// [tf, keys); every other entry of its probability rows is zero.
constexpr int64_t kCausalBlock = 64;
template <class F>
void for_each_query_block(int64_t T, int64_t P, const AttentionConfig& cfg, F&& f) {
  const bool causal = cfg.mask == AttentionMask::kCausal;
  const int64_t block = causal ? kCausalBlock : std::max<int64_t>(T, 1);
  for (int64_t i0 = 0; i0 < T; i0 += block) {
    const int64_t rows = std::min(block, T - i0);
    const int64_t first = cfg.window > 0 ? std::max<int64_t>(P + i0 - cfg.window + 1, 0) : 0;
    f(i0, rows, std::min(first, P), std::max<int64_t>(first - P, 0), causal ? i0 + rows : T);
  }
}

}  // namespace

void attention_forward(const Tensor& out, const Tensor& probs, const Tensor& qkv, const Tensor& prefix_k,
                       const Tensor& prefix_v, const Tensor& key_mask, const AttentionConfig& cfg) {
  PTUNE_ROUTE(qkv, attention_forward, out, probs, qkv, prefix_k, prefix_v, key_mask, cfg);
  const Layout l = make_layout(qkv, prefix_k, cfg);
  check_tensor(probs, "attention probs", {l.batch, l.heads, l.seq, l.keys});
  check_tensor(out, "attention output", {l.batch, l.seq, l.q_width});
  if (key_mask.defined()) check_tensor(key_mask, "attention key mask", {l.batch, l.seq}, DType::kI32);
  const float* pqkv = qkv.data<float>();
  const float* pk = l.prefix ? prefix_k.data<float>() : nullptr;
  const float* pv = l.prefix ? prefix_v.data<float>() : nullptr;
  const int32_t* pmask = key_mask.defined() ? key_mask.data<int32_t>() : nullptr;
  float* pprobs = probs.data<float>();
  float* pout = out.data<float>();
  const bool causal = cfg.mask == AttentionMask::kCausal;
  const int64_t T = l.seq, P = l.prefix, S = l.keys, D = l.head_dim, W = l.qkv_width;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < l.batch; ++b) {
    for (int64_t h = 0; h < l.heads; ++h) {
      const float* tokens = pqkv + b * T * W;
      float* att = pprobs + (b * l.heads + h) * T * S;  // (T, P + T)
      float* o = pout + b * T * l.q_width + h * D;      // (T, D), row stride H·D
      for_each_query_block(T, P, cfg, [&](int64_t i0, int64_t rows, int64_t pf, int64_t tf, int64_t keys) {
        const float* q = tokens + i0 * W + l.q_offset(h);  // (rows, D)
        float* a = att + i0 * S;                           // (rows, P + T)
        float* ob = o + i0 * l.q_width;
        const float* pkb = pk ? pk + pf * l.kv_width + l.prefix_offset(h) : nullptr;
        const float* pvb = pv ? pv + pf * l.kv_width + l.prefix_offset(h) : nullptr;
        if (pf < P) gemm(Trans::kNo, Trans::kYes, rows, P - pf, D, cfg.scale, q, W, pkb, l.kv_width, 0.0f, a + pf, S);
        gemm(Trans::kNo, Trans::kYes, rows, keys - tf, D, cfg.scale, q, W, tokens + tf * W + l.k_offset(h), W, 0.0f,
             a + P + tf, S);
        for (int64_t r = 0; r < rows; ++r) {
          // Query i0 + r is key P + i0 + r; its window starts window − 1 keys back.
          const int64_t first = cfg.window > 0 ? std::max<int64_t>(P + i0 + r - cfg.window + 1, 0) : 0;
          masked_softmax_row(a + r * S, P, T, pmask ? pmask + b * T : nullptr, first, causal ? i0 + r + 1 : T);
        }
        if (pf < P) gemm(Trans::kNo, Trans::kNo, rows, D, P - pf, 1.0f, a + pf, S, pvb, l.kv_width, 0.0f, ob, l.q_width);
        gemm(Trans::kNo, Trans::kNo, rows, D, keys - tf, 1.0f, a + P + tf, S, tokens + tf * W + l.v_offset(h), W,
             pf < P ? 1.0f : 0.0f, ob, l.q_width);
      });
    }
  }
}

void attention_backward(const Tensor& dqkv, const Tensor& dprefix_k, const Tensor& dprefix_v, const Tensor& dscores,
                        const Tensor& dout, const Tensor& out, const Tensor& qkv, const Tensor& probs,
                        const Tensor& prefix_k, const Tensor& prefix_v, const AttentionConfig& cfg, GradMode mode) {
  PTUNE_ROUTE(qkv, attention_backward, dqkv, dprefix_k, dprefix_v, dscores, dout, out, qkv, probs, prefix_k, prefix_v,
              cfg, mode);
  (void)out;  // the saved probabilities give δ = Σ p·dp directly
  const Layout l = make_layout(qkv, prefix_k, cfg);
  check_tensor(dqkv, "attention dqkv", qkv.shape());
  check_tensor(dscores, "attention dscores", probs.shape());
  check_tensor(dout, "attention dout", {l.batch, l.seq, l.q_width});
  // The GEMMs below add into dqkv; the reference path starts kWrite from zero.
  if (mode == GradMode::kWrite) Tensor(dqkv).zero_();
  const float* pqkv = qkv.data<float>();
  const float* pk = l.prefix ? prefix_k.data<float>() : nullptr;
  const float* pv = l.prefix ? prefix_v.data<float>() : nullptr;
  const float* pprobs = probs.data<float>();
  const float* pdout = dout.data<float>();
  float* pdqkv = dqkv.data<float>();
  float* pds = dscores.data<float>();
  const int64_t T = l.seq, P = l.prefix, S = l.keys, D = l.head_dim, W = l.qkv_width;

  // Pass 1: everything that belongs to one (batch, kv head) pair — the
  // query heads of a group share their key/value rows, so they stay in one
  // iteration and no two iterations write the same dqkv bytes.
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < l.batch; ++b) {
    for (int64_t g = 0; g < l.kv_heads; ++g) {
      for (int64_t h = g * l.group; h < (g + 1) * l.group; ++h) {
        const float* tokens = pqkv + b * T * W;
        float* dtokens = pdqkv + b * T * W;
        const float* att = pprobs + (b * l.heads + h) * T * S;
        float* ds = pds + (b * l.heads + h) * T * S;
        const float* dout_h = pdout + b * T * l.q_width + h * D;
        for_each_query_block(T, P, cfg, [&](int64_t i0, int64_t rows, int64_t pf, int64_t tf, int64_t keys) {
          const float* a = att + i0 * S;  // (rows, P + T); keys outside [pf, P) ∪ [P + tf, P + keys) have p = 0
          float* d = ds + i0 * S;
          const float* dob = dout_h + i0 * l.q_width;
          const float* q = tokens + i0 * W + l.q_offset(h);
          float* dq = dtokens + i0 * W + l.q_offset(h);
          const float* pkb = pk ? pk + pf * l.kv_width + l.prefix_offset(h) : nullptr;
          const float* pvb = pv ? pv + pf * l.kv_width + l.prefix_offset(h) : nullptr;
          const int64_t kt = keys - tf;  // token keys the block sees, from tf
          // dprobs = dout · Vᵀ
          if (pf < P) gemm(Trans::kNo, Trans::kYes, rows, P - pf, D, 1.0f, dob, l.q_width, pvb, l.kv_width, 0.0f,
                           d + pf, S);
          gemm(Trans::kNo, Trans::kYes, rows, kt, D, 1.0f, dob, l.q_width, tokens + tf * W + l.v_offset(h), W, 0.0f,
               d + P + tf, S);
          // dV += probsᵀ · dout
          gemm(Trans::kYes, Trans::kNo, kt, D, rows, 1.0f, a + P + tf, S, dob, l.q_width, 1.0f,
               dtokens + tf * W + l.v_offset(h), W);
          // Softmax backward: dscore = p ⊙ (dp − Σ p·dp) over the keys the
          // block computed; the rest of the row is 0 (pass 2 reads it whole).
          for (int64_t r = 0; r < rows; ++r) {
            const float* p = a + r * S;
            float* dr = d + r * S;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t j = pf; j < P; ++j) dot += p[j] * dr[j];
#pragma omp simd reduction(+ : dot)
            for (int64_t j = P + tf; j < P + keys; ++j) dot += p[j] * dr[j];
#pragma omp simd
            for (int64_t j = pf; j < P; ++j) dr[j] = p[j] * (dr[j] - dot);
#pragma omp simd
            for (int64_t j = P + tf; j < P + keys; ++j) dr[j] = p[j] * (dr[j] - dot);
            std::fill(dr, dr + pf, 0.0f);
            std::fill(dr + P, dr + P + tf, 0.0f);
            std::fill(dr + P + keys, dr + S, 0.0f);
          }
          // dQ += scale · dscores · K;  dK += scale · dscoresᵀ · Q
          if (pf < P) gemm(Trans::kNo, Trans::kNo, rows, D, P - pf, cfg.scale, d + pf, S, pkb, l.kv_width, 1.0f, dq, W);
          gemm(Trans::kNo, Trans::kNo, rows, D, kt, cfg.scale, d + P + tf, S, tokens + tf * W + l.k_offset(h), W, 1.0f,
               dq, W);
          gemm(Trans::kYes, Trans::kNo, kt, D, rows, cfg.scale, d + P + tf, S, q, W, 1.0f,
               dtokens + tf * W + l.k_offset(h), W);
        });
      }
    }
  }

  // Pass 2: the prefix is shared by the batch, so its gradient sums over b;
  // one iteration per kv head keeps the writes disjoint.
  if (P == 0 || (!dprefix_k.defined() && !dprefix_v.defined())) return;
  float* pdk = dprefix_k.defined() ? dprefix_k.data<float>() : nullptr;
  float* pdv = dprefix_v.defined() ? dprefix_v.data<float>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < l.kv_heads; ++g) {
    for (int64_t b = 0; b < l.batch; ++b) {
      for (int64_t h = g * l.group; h < (g + 1) * l.group; ++h) {
        const float* att = pprobs + (b * l.heads + h) * T * S;
        const float* ds = pds + (b * l.heads + h) * T * S;
        const float* dout_h = pdout + b * T * l.q_width + h * D;
        const float* q = pqkv + b * T * W + l.q_offset(h);
        if (pdk) gemm(Trans::kYes, Trans::kNo, P, D, T, cfg.scale, ds, S, q, W, 1.0f, pdk + l.prefix_offset(h),
                      l.kv_width);
        if (pdv) gemm(Trans::kYes, Trans::kNo, P, D, T, 1.0f, att, S, dout_h, l.q_width, 1.0f,
                      pdv + l.prefix_offset(h), l.kv_width);
      }
    }
  }
}

}  // namespace ptune::ops
