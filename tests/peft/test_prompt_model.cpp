// Where ptune goes beyond peft — virtual tokens at template slots, a KV
// prefix in a subset of layers, prefix dropout — the prompt parameters'
// gradients are checked against finite differences of the whole frozen
// model, and a subset equal to "all layers" against the default.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "framework/core/arena.h"
#include "framework/model/transformer.h"
#include "framework/peft/prompt_model.h"

namespace ptune::peft {
namespace {

struct PromptFixture {
  std::unique_ptr<model::Transformer> model;
  ParameterSet params;
  std::unique_ptr<PromptModel> prompt;
  Tensor ids, types, mask, weights;  // weights: the fixed probe of the loss Σ hidden·w
};

// Tiny BERT fixture; ids (2, 7) with virtual tokens where `virtual_at`.
void build(PromptFixture& s, const PromptConfig& config, const std::vector<int>& virtual_at) {
  s.model = model::Transformer::load(std::string(PTUNE_FIXTURES) + "/model/bert");
  s.prompt = std::make_unique<PromptModel>(config, *s.model, s.params);
  s.params.finalize();
  Rng rng(7);
  s.prompt->init(rng);
  const int64_t B = 2, T = 7;
  s.ids = Tensor::empty({B, T}, DType::kI32);
  s.mask = Tensor::empty({B, T}, DType::kI32);
  s.types = Tensor::zeros({B, T}, DType::kI32);
  int next_virtual = 0;
  for (int64_t b = 0; b < B; ++b) {
    next_virtual = 0;
    for (int64_t t = 0; t < T; ++t) {
      const bool v = std::find(virtual_at.begin(), virtual_at.end(), int(t)) != virtual_at.end();
      s.ids.data<int32_t>()[b * T + t] = v ? -(++next_virtual) : int32_t(10 + 13 * b + 3 * t);
      s.mask.data<int32_t>()[b * T + t] = b == 1 && t == T - 1 ? 0 : 1;
    }
  }
  s.weights = Tensor::empty({B, T, s.model->spec().hidden}, DType::kF32);
  rng.fill_normal(s.weights, 0.0f, 1.0f);
}

// Σ hidden·w with a fresh Rng(seed) each call, so dropout masks repeat.
double loss(PromptFixture& s, Mode mode) {
  Arena arena;
  Rng rng(99);
  const Tensor h = s.prompt->forward(s.ids, s.types, s.mask, arena, mode, rng);
  double sum = 0;
  for (int64_t i = 0; i < h.numel(); ++i) sum += double(h.data<float>()[i]) * s.weights.data<float>()[i];
  return sum;
}

void analytic(PromptFixture& s, Mode mode) {
  Arena arena;
  Rng rng(99);
  s.params.zero_grad();
  s.prompt->forward(s.ids, s.types, s.mask, arena, mode, rng);
  s.prompt->backward(s.weights, arena);
}

void expect_fd(PromptFixture& s, Mode mode) {
  analytic(s, mode);
  const Tensor values = s.params.values(), grads = s.params.grads().clone();
  int checked = 0, bad = 0;
  for (int64_t i = 0; i < values.numel(); i += 7) {  // a stride of the parameters
    float* p = values.data<float>() + i;
    const float saved = *p;
    *p = saved + 1e-2f;
    const double up = loss(s, mode);
    *p = saved - 1e-2f;
    const double down = loss(s, mode);
    *p = saved;
    const double numeric = (up - down) / 2e-2, g = grads.data<float>()[i];
    ++checked;
    if (std::fabs(numeric - g) > 2e-3 + 2e-2 * std::fabs(numeric) && bad++ < 5)
      ADD_FAILURE() << "parameter element " << i << ": analytic " << g << " numeric " << numeric;
  }
  EXPECT_GT(checked, 20);
  EXPECT_EQ(bad, 0);
}

TEST(PromptModel, TemplateSlotsGradientMatchesFiniteDifferences) {
  PromptConfig c = PromptConfig::preset(Method::kPTuning);
  c.encoder = Encoder::kMlp;
  c.encoder_hidden = 8;
  c.num_virtual_tokens = 3;
  PromptFixture s;
  build(s, c, {2, 3, 5});  // slots inside the sentence, not prepended
  expect_fd(s, Mode::kEval);
}

TEST(PromptModel, LayerSubsetWithPrefixDropoutMatchesFiniteDifferences) {
  PromptConfig c = PromptConfig::preset(Method::kPTuningV2);
  c.num_virtual_tokens = 3;
  c.layers = {1};
  c.prefix_dropout = 0.3f;
  PromptFixture s;
  build(s, c, {});
  EXPECT_EQ(s.prompt->prefix_layers(), std::vector<int64_t>{1});
  expect_fd(s, Mode::kTrain);  // the dropout mask is a fixed function of the seed
  // Dropout is active in training only.
  EXPECT_NE(loss(s, Mode::kTrain), loss(s, Mode::kEval));
}

TEST(PromptModel, AllLayersListedEqualsTheDefault) {
  PromptConfig c = PromptConfig::preset(Method::kPTuningV2);
  c.num_virtual_tokens = 2;
  PromptFixture a, b;
  build(a, c, {});
  c.layers = {1, 0};
  build(b, c, {});
  Tensor dst = b.params.values();
  dst.copy_from(a.params.values());
  EXPECT_EQ(loss(a, Mode::kEval), loss(b, Mode::kEval));
}

TEST(PromptModel, BadLayerListIsRefused) {
  PromptConfig c = PromptConfig::preset(Method::kPTuningV2);
  c.layers = {0, 5};
  auto model = model::Transformer::load(std::string(PTUNE_FIXTURES) + "/model/bert");
  ParameterSet params;
  EXPECT_THROW(PromptModel(c, *model, params), Error);
}

}  // namespace
}  // namespace ptune::peft
