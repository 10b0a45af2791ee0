// Task heads' backward against finite differences of their loss, for every
// architecture and task kind: d(loss)/d(hidden) and the head parameters.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/core/arena.h"
#include "framework/model/task_heads.h"
#include "framework/model/transformer.h"

namespace ptune::model {
namespace {

struct Case {
  const char* arch;
  TaskKind kind;
};

std::string case_name(const Case& c) {
  const char* kinds[] = {"classification", "verbalizer", "causal_lm", "token_classification"};
  return std::string(c.arch) + "_" + kinds[int(c.kind)];
}

class Heads : public ::testing::TestWithParam<Case> {};

TEST_P(Heads, BackwardMatchesFiniteDifferences) {
  const Case c = GetParam();
  auto model = Transformer::load(std::string(PTUNE_FIXTURES) + "/model/" + c.arch);
  const int64_t B = 3, T = 5, C = model->spec().hidden, K = 3;
  ParameterSet params;
  TaskOptions options;
  options.kind = c.kind;
  options.classifier_dropout = 0.0f;
  auto head = TaskHead::create(options, *model, c.kind == TaskKind::kCausalLm ? 0 : K, {11, 42, 7}, params);
  params.finalize();
  Rng rng(3);
  head->init(rng);
  // Larger head weights than the N(0, 0.02) init, so the test is sensitive.
  if (params.numel() > 0) rng.fill_normal(const_cast<Tensor&>(params.values()), 0.0f, 0.3f);

  HeadBatch batch;
  batch.attention_mask = Tensor::empty({B, T}, DType::kI32);
  batch.labels = Tensor::empty({B}, DType::kI32);
  batch.mask_positions = Tensor::empty({B}, DType::kI32);
  batch.lm_labels = Tensor::empty({B, T}, DType::kI32);
  batch.tags = Tensor::empty({B, T}, DType::kI32);
  for (int64_t b = 0; b < B; ++b) {
    batch.labels.data<int32_t>()[b] = int32_t(b % K);
    batch.mask_positions.data<int32_t>()[b] = b == 0 ? 2 : -1;  // others: the last real token
    for (int64_t t = 0; t < T; ++t) {
      batch.attention_mask.data<int32_t>()[b * T + t] = !(b == 2 && t >= 3);
      batch.lm_labels.data<int32_t>()[b * T + t] = t < 2 || (b == 2 && t >= 3) ? -100 : int32_t(5 + 17 * b + t);
      // Tags on some tokens of each row ([CLS], later subwords and padding untagged).
      batch.tags.data<int32_t>()[b * T + t] = t == 0 || t == 2 || (b == 2 && t >= 3) ? -100 : int32_t((b + t) % K);
    }
  }
  // The rows the head reads, (N, C): what the model's forward returns for them.
  const std::vector<int32_t> rows = head->select(batch);
  Tensor hidden = Tensor::empty({int64_t(rows.size()), C}, DType::kF32);
  rng.fill_normal(hidden, 0.0f, 1.0f);

  auto loss = [&] {
    Arena arena;
    const HeadOutput o = head->forward(hidden, arena, Mode::kEval, rng);
    return o.loss_sum / double(o.count);
  };
  Arena arena;
  const HeadOutput o = head->forward(hidden, arena, Mode::kEval, rng);
  ASSERT_GT(o.count, 0);
  Tensor dhidden = Tensor::zeros(hidden.shape(), DType::kF32);
  params.zero_grad();
  head->backward(dhidden, 1.0f / float(o.count), arena);

  auto check = [&](const char* what, const Tensor& x, const Tensor& grad, int64_t stride) {
    int bad = 0;
    for (int64_t i = 0; i < x.numel(); i += stride) {
      float* p = x.data<float>() + i;
      const float saved = *p;
      *p = saved + 1e-2f;
      const double up = loss();
      *p = saved - 1e-2f;
      const double down = loss();
      *p = saved;
      const double numeric = (up - down) / 2e-2, g = grad.data<float>()[i];
      if (std::fabs(numeric - g) > 1e-4 + 2e-2 * std::fabs(numeric) && bad++ < 5)
        ADD_FAILURE() << what << "[" << i << "]: analytic " << g << " numeric " << numeric;
    }
  };
  check("dhidden", hidden, dhidden, 3);
  if (params.numel() > 0) check("head parameters", params.values(), params.grads().clone(), 5);
}

// A micro-batch with nothing to score (every label −100) still names one
// row — the model runs on every rank of a sharded job — and adds nothing.
TEST(HeadsSelect, NothingLabelledNamesRowZeroAndCountsNothing) {
  for (const TaskKind kind : {TaskKind::kCausalLm, TaskKind::kTokenClassification}) {
    auto model = Transformer::load(std::string(PTUNE_FIXTURES) + "/model/gpt2");
    ParameterSet params;
    TaskOptions options;
    options.kind = kind;
    auto head = TaskHead::create(options, *model, kind == TaskKind::kCausalLm ? 0 : 3, {}, params);
    params.finalize();
    const int64_t B = 2, T = 4, C = model->spec().hidden;
    HeadBatch batch;
    batch.attention_mask = Tensor::empty({B, T}, DType::kI32);
    Tensor none = Tensor::empty({B, T}, DType::kI32);
    for (int64_t i = 0; i < B * T; ++i) {
      batch.attention_mask.data<int32_t>()[i] = 1;
      none.data<int32_t>()[i] = -100;
    }
    (kind == TaskKind::kCausalLm ? batch.lm_labels : batch.tags) = none;
    EXPECT_EQ(head->select(batch), std::vector<int32_t>{0});
    Arena arena;
    Rng rng(0);
    Tensor hidden = Tensor::zeros({1, C}, DType::kF32), dhidden = Tensor::zeros({1, C}, DType::kF32);
    const HeadOutput o = head->forward(hidden, arena, Mode::kTrain, rng);
    EXPECT_EQ(o.count, 0);
    EXPECT_EQ(o.loss_sum, 0.0);
    head->backward(dhidden, 1.0f, arena);
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(dhidden.data<float>()[c], 0.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, Heads,
    ::testing::Values(Case{"bert", TaskKind::kClassification}, Case{"roberta", TaskKind::kClassification},
                      Case{"gpt2", TaskKind::kClassification}, Case{"bert", TaskKind::kVerbalizer},
                      Case{"roberta", TaskKind::kVerbalizer}, Case{"gpt2", TaskKind::kVerbalizer},
                      Case{"gpt2", TaskKind::kCausalLm}, Case{"bert", TaskKind::kTokenClassification},
                      Case{"gpt2", TaskKind::kTokenClassification}),
    [](const auto& info) { return case_name(info.param); });

}  // namespace
}  // namespace ptune::model
