#include "framework/model/task_heads.h"

#include <cmath>
#include <utility>

#include "framework/model/heads.h"
#include "framework/ops/activation.h"
#include "framework/ops/cross_entropy.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"

namespace ptune::model {

namespace {

// Cross-entropy of (N, K) scores against targets (host or device); returns
// the loss sum (summed on the host) and the count, keeps logsumexp for
// backward.
struct Loss {
  Tensor scores, lse, targets;
  std::vector<float> host_losses;  // reused: no allocation in the steady state
  HeadOutput apply(const Tensor& scores_in, const Tensor& targets_in, Arena& arena) {
    scores = scores_in;
    const int64_t n = scores.numel() / scores.size(-1);
    targets = arena.copy_of(targets_in);
    lse = arena.alloc({n});
    Tensor losses = arena.alloc({n});
    HeadOutput out;
    out.scores = scores;
    out.count = ops::cross_entropy_forward(losses, lse, scores, targets);
    host_losses.resize(size_t(n));
    Tensor::borrow(host_losses.data(), {n}, DType::kF32).copy_from(losses);
    for (float l : host_losses) out.loss_sum += l;
    return out;
  }
  // dscores += scale · ∂(loss sum)/∂scores
  void backward(const Tensor& dscores, float scale) const {
    ops::cross_entropy_backward(dscores, scores, lse, targets, scale);
  }
};

// Class targets from host labels, in place: kUnlabeled (−1: an example or
// word read only to be predicted, data::TemplateContext::labels_required)
// becomes the loss's ignore index; anything else must be a class.
void to_class_targets(std::vector<int32_t>& labels, int64_t K, const char* what) {
  for (int32_t& y : labels) {
    if (y == -1) {
      y = ops::kIgnoreIndex;
      continue;
    }
    PTUNE_CHECK(y >= 0 && y < K, "{} index {} outside the {} classes", what, y, K);
  }
}

// The batch's shape (B, T), from its attention mask (host, (B, T) i32).
std::pair<int64_t, int64_t> batch_shape(const HeadBatch& batch) {
  PTUNE_CHECK(batch.attention_mask.defined() && batch.attention_mask.dim() == 2 &&
                  batch.attention_mask.device().is_cpu(),
              "a task head reads the batch's (B, T) attention mask on the host");
  return {batch.attention_mask.size(0), batch.attention_mask.size(1)};
}

// Flat row b·T + t of the last real token of each row of the batch: where
// decoders pool.
void last_real_tokens(std::vector<int32_t>& rows, const HeadBatch& batch) {
  const auto [B, T] = batch_shape(batch);
  const int32_t* mask = batch.attention_mask.data<int32_t>();
  rows.resize(size_t(B));
  for (int64_t b = 0; b < B; ++b) {
    int64_t last = -1;
    for (int64_t t = 0; t < T; ++t)
      if (mask[b * T + t]) last = t;
    PTUNE_CHECK(last >= 0, "batch row {} has no real token", b);
    rows[size_t(b)] = int32_t(b * T + last);
  }
}

// Flat (b·T + t) positions whose label is not −100, and those labels, from
// a host (B, T) tensor; with shift 1, position t takes the label of t + 1
// (a causal LM's next token). How the per-token heads pick their rows.
void labelled_positions(std::vector<int32_t>& rows, std::vector<int32_t>& targets, const Tensor& labels,
                        int64_t shift) {
  rows.clear();
  targets.clear();
  const int64_t B = labels.size(0), T = labels.size(1);
  const int32_t* l = labels.data<int32_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + shift < T; ++t)
      if (l[b * T + t + shift] != ops::kIgnoreIndex) {
        rows.push_back(int32_t(b * T + t));
        targets.push_back(l[b * T + t + shift]);
      }
  // TaskHead::select never names no row: the model runs on row 0 alone.
  if (rows.empty()) rows.push_back(0);
}

// The trainable heads compute in f32 whatever the frozen model's dtype:
// x in f32 (x itself when it already is).
Tensor as_f32(const Tensor& x, Arena& arena) {
  if (x.dtype() == DType::kF32) return x;
  Tensor y = arena.alloc(x.shape());
  ops::convert(y, x);
  return y;
}

// Dropout that remembers its mask's (seed, offset) for backward.
struct Dropout {
  float p = 0.0f;
  bool active = false;
  uint64_t seed = 0, offset = 0;
  Tensor forward(const Tensor& x, Arena& arena, Mode mode, Rng& rng) {
    active = mode == Mode::kTrain && p > 0.0f;
    if (!active) return x;
    seed = rng.seed();
    offset = rng.reserve(uint64_t(x.numel()));
    Tensor y = arena.alloc(x.shape());
    ops::dropout_forward(y, x, p, seed, offset);
    return y;
  }
  // dx += dropout'(dy); without dropout dx += dy.
  void backward(const Tensor& dx, const Tensor& dy) const {
    if (active) ops::dropout_backward(dx, dy, p, seed, offset);
    else ops::accumulate(dx, dy);
  }
};

class ClassificationHead final : public TaskHead {
 public:
  ClassificationHead(const TaskOptions& options, const Transformer& model, int64_t labels, ParameterSet& params)
      : params_(params), labels_(labels) {
    const int64_t C = model.spec().hidden;
    drop1_.p = drop2_.p = options.classifier_dropout;
    switch (model.spec().arch) {
      case Arch::kBert:
        pooler_ = std::make_unique<Pooler>(model);
        out_w_ = params.add("classifier.weight", {labels, C});
        out_b_ = params.add("classifier.bias", {labels}, Decay::kExempt);
        break;
      case Arch::kRoberta:
        dense_ = true;
        dense_w_ = params.add("classifier.dense.weight", {C, C});
        dense_b_ = params.add("classifier.dense.bias", {C}, Decay::kExempt);
        out_w_ = params.add("classifier.out_proj.weight", {labels, C});
        out_b_ = params.add("classifier.out_proj.bias", {labels}, Decay::kExempt);
        break;
      case Arch::kGpt2:
      case Arch::kLlama:
      case Arch::kMistral:
      case Arch::kQwen2:
      case Arch::kQwen3:
      case Arch::kSmolLM3:
      case Arch::kGemma3:
      case Arch::kPhi3:  // *ForSequenceClassification: `score` on the last real token
        last_token_ = true;
        out_w_ = params.add("score.weight", {labels, C});
        break;
    }
  }

  void init(Rng& rng) override {
    Tensor w = params_.value(out_w_);
    rng.fill_normal(w, 0.0f, 0.02f);
    if (dense_) {
      Tensor d = params_.value(dense_w_);
      rng.fill_normal(d, 0.0f, 0.02f);
    }
  }

  // One row per example: the last real token (decoders) or the first
  // ([CLS], <s>).
  const std::vector<int32_t>& select(const HeadBatch& batch) override {
    const auto [B, T] = batch_shape(batch);
    if (last_token_) {
      last_real_tokens(rows_, batch);
    } else {
      rows_.resize(size_t(B));
      for (int64_t b = 0; b < B; ++b) rows_[size_t(b)] = int32_t(b * T);
    }
    targets_.assign(batch.labels.data<int32_t>(), batch.labels.data<int32_t>() + B);
    to_class_targets(targets_, labels_, "label");
    return rows_;
  }

  HeadOutput forward(const Tensor& hidden, Arena& arena, Mode mode, Rng& rng) override {
    const int64_t B = hidden.size(0), C = hidden.size(1);
    Tensor pooled = hidden;  // (B, C)
    if (pooler_) {
      pooled = arena.alloc({B, C}, hidden.dtype());
      pooler_->forward(pooled, hidden, arena);
    }
    x1_ = drop1_.forward(as_f32(pooled, arena), arena, mode, rng);
    Tensor x = x1_;
    if (dense_) {
      dense_out_ = arena.alloc({B, C});
      Tensor tanh_out = arena.alloc({B, C});
      ops::linear_forward(dense_out_, x1_, params_.value(dense_w_), params_.value(dense_b_));
      ops::activation_forward(ops::Activation::kTanh, tanh_out, dense_out_);
      x = drop2_.forward(tanh_out, arena, mode, rng);
    }
    head_in_ = x;
    Tensor logits = arena.alloc({B, labels_});
    ops::linear_forward(logits, x, params_.value(out_w_), last_token_ ? Tensor() : params_.value(out_b_));
    return loss_.apply(logits, Tensor::borrow(targets_.data(), {B}, DType::kI32), arena);
  }

  void backward(const Tensor& dhidden, float loss_scale, Arena& arena) override {
    const int64_t B = head_in_.size(0), C = head_in_.size(1);
    Tensor dlogits = arena.zeros({B, labels_});
    loss_.backward(dlogits, loss_scale);
    ops::linear_backward_params(params_.grad(out_w_), last_token_ ? Tensor() : params_.grad(out_b_), dlogits,
                                head_in_);
    Tensor dx = arena.zeros({B, C});
    ops::linear_backward_input(dx, dlogits, params_.value(out_w_));
    if (dense_) {
      Tensor dtanh = arena.zeros({B, C}), ddense = arena.zeros({B, C});
      drop2_.backward(dtanh, dx);
      ops::activation_backward(ops::Activation::kTanh, ddense, dtanh, dense_out_);
      ops::linear_backward_params(params_.grad(dense_w_), params_.grad(dense_b_), ddense, x1_);
      dx = arena.zeros({B, C});
      ops::linear_backward_input(dx, ddense, params_.value(dense_w_));
    }
    Tensor dpooled = arena.zeros({B, C});
    drop1_.backward(dpooled, dx);
    if (!pooler_) {
      ops::accumulate(dhidden, dpooled);  // into the frozen model's dtype
      return;
    }
    if (dhidden.dtype() != DType::kF32) {  // the frozen pooler computes in the model's dtype
      Tensor d = arena.alloc({B, C}, dhidden.dtype());
      ops::convert(d, dpooled);
      dpooled = d;
    }
    pooler_->backward(dhidden, dpooled, arena);
  }

 private:
  ParameterSet& params_;
  int64_t labels_;
  std::unique_ptr<Pooler> pooler_;
  bool dense_ = false, last_token_ = false;
  size_t dense_w_ = 0, dense_b_ = 0, out_w_ = 0, out_b_ = 0;
  Dropout drop1_, drop2_;
  Loss loss_;
  Tensor x1_, dense_out_, head_in_;  // saved for backward
  std::vector<int32_t> rows_, targets_;  // host, reused
};

class VerbalizerHead final : public TaskHead {
 public:
  VerbalizerHead(const Transformer& model, std::vector<int32_t> words) : model_(model), lm_(model), words_(std::move(words)) {
    for (int32_t w : words_)
      PTUNE_CHECK(w >= 0 && w < model.spec().vocab_size, "verbalizer token id {} outside the vocabulary", w);
  }

  void init(Rng&) override {}  // nothing trainable: the LM head is frozen

  // One row per example: its [MASK], or without one the last real token.
  const std::vector<int32_t>& select(const HeadBatch& batch) override {
    const auto [B, T] = batch_shape(batch);
    last_real_tokens(rows_, batch);
    for (int64_t b = 0; b < B; ++b) {
      const int32_t m = batch.mask_positions.defined() ? batch.mask_positions.data<int32_t>()[b] : -1;
      if (m >= 0) rows_[size_t(b)] = int32_t(b * T + m);
    }
    targets_.assign(batch.labels.data<int32_t>(), batch.labels.data<int32_t>() + B);
    to_class_targets(targets_, int64_t(words_.size()), "label");
    return rows_;
  }

  HeadOutput forward(const Tensor& hidden, Arena& arena, Mode, Rng&) override {
    const int64_t B = hidden.size(0), V = model_.spec().vocab_size, K = int64_t(words_.size());
    Tensor logits = arena.alloc({B, V}, hidden.dtype());
    lm_.forward(logits, hidden, arena);
    // scores (B, K) f32: column k is the logit column of label word k.
    Tensor scores = arena.alloc({B, K});
    for (int64_t k = 0; k < K; ++k) ops::copy_columns(scores, k, logits, words_[size_t(k)], 1, false);
    return loss_.apply(scores, Tensor::borrow(targets_.data(), {B}, DType::kI32), arena);
  }

  void backward(const Tensor& dhidden, float loss_scale, Arena& arena) override {
    const int64_t B = dhidden.size(0), V = model_.spec().vocab_size, K = int64_t(words_.size());
    Tensor dscores = arena.zeros({B, K}), dlogits = arena.zeros({B, V}, dhidden.dtype());
    loss_.backward(dscores, loss_scale);
    for (int64_t k = 0; k < K; ++k) ops::copy_columns(dlogits, words_[size_t(k)], dscores, k, 1, true);
    lm_.backward(dhidden, dlogits, arena);
  }

 private:
  const Transformer& model_;
  LmHead lm_;
  std::vector<int32_t> words_;
  Loss loss_;
  std::vector<int32_t> rows_, targets_;  // host, reused
};

class CausalLmHead final : public TaskHead {
 public:
  explicit CausalLmHead(const Transformer& model) : model_(model), lm_(model) {
    PTUNE_CHECK(model.spec().is_decoder(), "task.kind causal-lm needs a decoder model, not {}", model.spec().arch_name());
  }

  void init(Rng&) override {}

  // Position t predicts token t + 1. Only the positions whose next token is
  // labelled are read: the (N, V) logits of an answer-only loss instead of
  // (B·T, V) — the LM head's GEMMs and its logits' memory scale with the
  // labelled tokens.
  const std::vector<int32_t>& select(const HeadBatch& batch) override {
    labelled_positions(rows_, targets_, batch.lm_labels, 1);
    return rows_;
  }

  HeadOutput forward(const Tensor& hidden, Arena& arena, Mode, Rng&) override {
    const int64_t N = int64_t(targets_.size());
    if (N == 0) return {};  // nothing labelled in this micro-batch
    Tensor logits = arena.alloc({N, model_.spec().vocab_size}, hidden.dtype());
    lm_.forward(logits, hidden, arena);
    return loss_.apply(logits, Tensor::borrow(targets_.data(), {N}, DType::kI32), arena);
  }

  void backward(const Tensor& dhidden, float loss_scale, Arena& arena) override {
    if (targets_.empty()) return;
    Tensor dlogits = arena.zeros(loss_.scores.shape(), loss_.scores.dtype());
    loss_.backward(dlogits, loss_scale);
    lm_.backward(dhidden, dlogits, arena);
  }

 private:
  const Transformer& model_;
  LmHead lm_;
  Loss loss_;
  std::vector<int32_t> rows_, targets_;  // host, reused: flat (b·T + t) positions and their next tokens
};

class TokenClassificationHead final : public TaskHead {
 public:
  TokenClassificationHead(const TaskOptions& options, const Transformer& model, int64_t labels, ParameterSet& params)
      : params_(params), labels_(labels) {
    const int64_t C = model.spec().hidden;
    drop_.p = options.classifier_dropout;
    const std::string name = model.spec().is_decoder() && model.spec().arch != Arch::kGpt2 ? "score" : "classifier";
    w_ = params.add(name + ".weight", {labels, C});
    b_ = params.add(name + ".bias", {labels}, Decay::kExempt);
  }

  void init(Rng& rng) override {
    Tensor w = params_.value(w_);
    rng.fill_normal(w, 0.0f, 0.02f);
  }

  // Only the tagged tokens go through the head: (N, C) rows instead of
  // (B·T, C), which is also what the loss sees in transformers (−100 rows
  // drop out of it).
  const std::vector<int32_t>& select(const HeadBatch& batch) override {
    PTUNE_CHECK(batch.tags.defined(), "token classification needs per-token tags in the batch");
    labelled_positions(rows_, targets_, batch.tags, 0);
    to_class_targets(targets_, labels_, "tag");
    return rows_;
  }

  HeadOutput forward(const Tensor& hidden, Arena& arena, Mode mode, Rng& rng) override {
    const int64_t N = int64_t(targets_.size());
    if (N == 0) return {};  // nothing tagged in this micro-batch
    x_ = drop_.forward(as_f32(hidden, arena), arena, mode, rng);
    Tensor logits = arena.alloc({N, labels_});
    ops::linear_forward(logits, x_, params_.value(w_), params_.value(b_));
    return loss_.apply(logits, Tensor::borrow(targets_.data(), {N}, DType::kI32), arena);
  }

  void backward(const Tensor& dhidden, float loss_scale, Arena& arena) override {
    const int64_t N = int64_t(targets_.size()), C = dhidden.size(-1);
    if (N == 0) return;
    Tensor dlogits = arena.zeros({N, labels_});
    loss_.backward(dlogits, loss_scale);
    ops::linear_backward_params(params_.grad(w_), params_.grad(b_), dlogits, x_);
    Tensor dx = arena.zeros({N, C});
    ops::linear_backward_input(dx, dlogits, params_.value(w_));
    Tensor dpicked = arena.zeros({N, C});
    drop_.backward(dpicked, dx);
    ops::accumulate(dhidden, dpicked);  // into the frozen model's dtype
  }

 private:
  ParameterSet& params_;
  int64_t labels_;
  size_t w_ = 0, b_ = 0;
  Dropout drop_;
  Loss loss_;
  Tensor x_;
  std::vector<int32_t> rows_, targets_;  // host, reused: flat (b·T + t) positions and their classes
};

}  // namespace

std::unique_ptr<TaskHead> TaskHead::create(const TaskOptions& options, const Transformer& model, int64_t num_labels,
                                           std::vector<int32_t> verbalizer_ids, ParameterSet& params) {
  switch (options.kind) {
    case TaskKind::kClassification:
      PTUNE_CHECK(num_labels >= 2, "classification needs at least 2 labels, got {}", num_labels);
      return std::make_unique<ClassificationHead>(options, model, num_labels, params);
    case TaskKind::kVerbalizer:
      PTUNE_CHECK(int64_t(verbalizer_ids.size()) == num_labels && num_labels >= 2,
                  "the verbalizer needs one word per label ({} labels, {} words)", num_labels, verbalizer_ids.size());
      return std::make_unique<VerbalizerHead>(model, std::move(verbalizer_ids));
    case TaskKind::kCausalLm: return std::make_unique<CausalLmHead>(model);
    case TaskKind::kTokenClassification:
      PTUNE_CHECK(num_labels >= 2, "token classification needs at least 2 labels, got {}", num_labels);
      return std::make_unique<TokenClassificationHead>(options, model, num_labels, params);
  }
  PTUNE_FAIL("unknown task kind");
}

}  // namespace ptune::model
