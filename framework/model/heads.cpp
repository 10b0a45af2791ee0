#include "framework/model/heads.h"

#include "framework/ops/activation.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/layernorm.h"
#include "framework/ops/linear.h"

namespace ptune::model {

namespace {
Tensor rows(const Tensor& t) { return t.view({t.numel() / t.size(-1), t.size(-1)}); }
}  // namespace

LmHead::LmHead(const Transformer& model) : spec_(model.spec()), w_(model.weights().heads) {
  const ModelWeights& weights = model.weights();
  PTUNE_CHECK(spec_.is_decoder() || weights.has(Component::kMlmHead),
              "this {} checkpoint has no masked-LM head", spec_.arch_name());
  PTUNE_CHECK(spec_.tie_word_embeddings || weights.has(Component::kLmHead),
              "this {} checkpoint has no 'lm_head.weight' and does not tie it to the embeddings "
              "(a *ForSequenceClassification checkpoint?)",
              spec_.arch_name());
  decoder_ = weights.has(Component::kLmHead) ? &w_.lm_w : &weights.embeddings.word;
}

void LmHead::forward(const Tensor& logits, const Tensor& hidden, Arena& arena) {
  hidden_ = rows(hidden);
  const int64_t N = hidden_.size(0), C = hidden_.size(1);
  if (spec_.is_decoder()) {
    ops::linear_forward(rows(logits), hidden_, *decoder_, Tensor());
    return;
  }
  const DType act = hidden.dtype();  // frozen heads compute in the model's dtype
  dense_ = arena.alloc({N, C}, act);
  act_ = arena.alloc({N, C}, act);
  normed_ = arena.alloc({N, C}, act);
  mean_ = arena.alloc({N});
  rstd_ = arena.alloc({N});
  ops::linear_forward(dense_, hidden_, w_.mlm_dense_w, w_.mlm_dense_b);
  ops::activation_forward(spec_.activation, act_, dense_);
  ops::norm_forward(spec_.norm, normed_, mean_, rstd_, act_, w_.mlm_norm_w, w_.mlm_norm_b, spec_.norm_eps);
  ops::linear_forward(rows(logits), normed_, *decoder_, w_.mlm_bias);
}

void LmHead::backward(const Tensor& dhidden, const Tensor& dlogits, Arena& arena) {
  if (spec_.is_decoder()) {
    ops::linear_backward_input(rows(dhidden), rows(dlogits), *decoder_);
    return;
  }
  const int64_t N = hidden_.size(0), C = hidden_.size(1);
  const DType act = dhidden.dtype();
  Tensor dnormed = arena.zeros({N, C}, act), dact = arena.zeros({N, C}, act), ddense = arena.zeros({N, C}, act);
  ops::linear_backward_input(dnormed, rows(dlogits), *decoder_);
  ops::norm_backward(spec_.norm, dact, Tensor(), Tensor(), dnormed, act_, w_.mlm_norm_w, mean_, rstd_);
  ops::activation_backward(spec_.activation, ddense, dact, dense_);
  ops::linear_backward_input(rows(dhidden), ddense, w_.mlm_dense_w);
}

Pooler::Pooler(const Transformer& model) : w_(model.weights().heads) {
  PTUNE_CHECK(model.weights().has(Component::kPooler), "this {} checkpoint has no pooler",
              model.spec().arch_name());
}

void Pooler::forward(const Tensor& pooled, const Tensor& first, Arena& arena) {
  dense_ = arena.alloc(first.shape(), first.dtype());
  ops::linear_forward(dense_, first, w_.pooler_w, w_.pooler_b);
  ops::activation_forward(ops::Activation::kTanh, pooled, dense_);
}

void Pooler::backward(const Tensor& dfirst, const Tensor& dpooled, Arena& arena) {
  Tensor ddense = arena.zeros(dfirst.shape(), dfirst.dtype());
  ops::activation_backward(ops::Activation::kTanh, ddense, dpooled, dense_);
  ops::linear_backward_input(dfirst, ddense, w_.pooler_w);
}

ScoreHead::ScoreHead(const Transformer& model) : pad_(model.spec().pad_token_id) {
  PTUNE_CHECK(model.weights().has(Component::kScore), "this {} checkpoint has no 'score.weight' head",
              model.spec().arch_name());
  w_ = &model.weights().heads.score_w;
}

int64_t ScoreHead::last_token(const Tensor& ids, int64_t b, int64_t pad_token_id) {
  PTUNE_CHECK(ids.device().is_cpu(), "score head: ids are read on the host");
  const int64_t T = ids.size(1);
  if (pad_token_id < 0) return T - 1;
  int64_t last = 0;
  for (int64_t t = 0; t < T; ++t)
    if (ids.data<int32_t>()[b * T + t] != pad_token_id) last = t;
  return last;
}

void ScoreHead::forward(const Tensor& logits, const Tensor& hidden, const Tensor& ids, Arena& arena) {
  const int64_t B = hidden.size(0), T = hidden.size(1), C = hidden.size(2);
  check_tensor(logits, "score logits", {B, labels()}, hidden.dtype());
  if (ids.defined()) check_tensor(ids, "ids", {B, T}, DType::kI32);
  seq_ = T;
  last_.assign(size_t(B), T - 1);
  Tensor picked = arena.alloc({B, C}, hidden.dtype());  // (B, C) hidden of each example's last real token
  for (int64_t b = 0; b < B; ++b) {
    if (ids.defined()) last_[size_t(b)] = last_token(ids, b, pad_);
    picked.select(b).copy_from(hidden.select(b).select(last_[size_t(b)]));
  }
  ops::linear_forward(logits, picked, *w_, Tensor());
}

void ScoreHead::backward(const Tensor& dhidden, const Tensor& dlogits, Arena& arena) {
  const int64_t B = dhidden.size(0), C = dhidden.size(2);
  Tensor dpicked = arena.zeros({B, C}, dhidden.dtype());
  ops::linear_backward_input(dpicked, dlogits, *w_);
  for (int64_t b = 0; b < B; ++b) ops::accumulate(dhidden.select(b).select(last_[size_t(b)]), dpicked.select(b));
}

}  // namespace ptune::model
