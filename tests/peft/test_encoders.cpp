// Prompt encoders against peft's modules (fixtures from
// tests/golden/gen_encoder_fixtures.py), finite differences of every
// parameter, and peft's prompt-tuning init rules.
#include <gtest/gtest.h>

#include "expect_close.h"

#include <cmath>
#include <memory>
#include <set>
#include <string>

#include "framework/core/arena.h"
#include "framework/core/parameters.h"
#include "framework/core/rng.h"
#include "framework/io/safetensors.h"
#include "framework/peft/encoders.h"
#include "framework/peft/prompt_init.h"
#include "ops/gradcheck.h"

namespace ptune::peft {
namespace {

using ptune::testing::expect_gradient;
using ptune::testing::random_tensor;
using ptune::testing::weighted_sum;

const std::string kPrefix = "prompt_encoder.";

io::SafetensorsFile fixture() {
  return io::SafetensorsFile::open(std::string(PTUNE_FIXTURES) + "/encoders/encoders.safetensors");
}

using ptune::testing::expect_close;

struct Case {
  const char* name;
  Encoder encoder;
  int64_t width;   // W
  int64_t hidden;  // encoder_hidden
};

// The fixture's dimensions: P = 4, token_dim = 16, encoder_hidden = 12,
// 2 prefix layers (W = 2·2·16 = 64).
const Case kCases[] = {
    {"prompt_embedding", Encoder::kNone, 16, 0}, {"prefix_plain", Encoder::kNone, 64, 0},
    {"prefix_mlp", Encoder::kPrefixMlp, 64, 12}, {"ptuning_mlp", Encoder::kMlp, 16, 12},
    {"ptuning_lstm", Encoder::kLstm, 16, 12},
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class GoldenEncoder : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenEncoder, MatchesPeftForwardAndGradients) {
  const Case& c = GetParam();
  const io::SafetensorsFile f = fixture();
  PromptConfig cfg;
  cfg.encoder = c.encoder;
  cfg.encoder_hidden = c.hidden;
  cfg.encoder_layers = 2;
  cfg.encoder_dropout = 0.3f;  // as in the fixture: eval mode must ignore it
  const EncoderDims dims{4, 16, c.width};
  ParameterSet params;
  auto enc = PromptEncoder::create(cfg, dims, params, kPrefix);
  params.finalize();

  // Every parameter named as peft names it, and nothing of peft's missing.
  const std::string case_prefix = std::string(c.name) + ".param.";
  std::set<std::string> peft_keys;
  for (const std::string& n : f.names())
    if (n.rfind(case_prefix, 0) == 0) peft_keys.insert(n.substr(case_prefix.size()));
  std::set<std::string> ours;
  for (size_t i = 0; i < params.entries().size(); ++i) {
    const std::string key = params.entries()[i].name.substr(kPrefix.size());
    ours.insert(key);
    ASSERT_TRUE(peft_keys.count(key)) << c.name << ": peft has no parameter " << key;
    const Tensor want = f.load(case_prefix + key);
    ASSERT_EQ(params.value(i).shape(), want.shape()) << key;
    params.value(i).copy_from(want);
  }
  EXPECT_EQ(ours, peft_keys) << c.name;

  Arena arena;
  Tensor out = Tensor::empty({4, c.width}, DType::kF32);
  Rng rng(5);
  enc->forward(out, arena, Mode::kEval, &rng);
  EXPECT_EQ(rng.offset(), 0u) << "eval mode drew random numbers";
  expect_close(std::string(c.name) + " out", out, f.load(std::string(c.name) + ".out"), 1e-5);

  params.zero_grad();
  enc->backward(f.load(std::string(c.name) + ".dout"), arena);
  for (size_t i = 0; i < params.entries().size(); ++i) {
    const std::string key = params.entries()[i].name.substr(kPrefix.size());
    expect_close(std::string(c.name) + " grad " + key, params.grad(i), f.load(std::string(c.name) + ".grad." + key),
                 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(Peft, GoldenEncoder, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// Finite differences: L = Σ out ⊙ R, every element of every parameter.
void gradcheck(Encoder encoder, int64_t hidden, int64_t width, Mode mode, float dropout, int64_t layers = 2) {
  PromptConfig cfg;
  cfg.encoder = encoder;
  cfg.encoder_hidden = hidden;
  cfg.encoder_layers = layers;
  cfg.encoder_dropout = dropout;
  const EncoderDims dims{4, 5, width};
  ParameterSet params;
  auto enc = PromptEncoder::create(cfg, dims, params);
  params.finalize();
  Rng init_rng(11);
  enc->init(init_rng);
  // Larger values than the default init, so tanh/σ leave their linear range.
  Tensor noise = random_tensor({params.numel()}, 12, 0.5f);
  for (int64_t i = 0; i < params.numel(); ++i) params.values().data<float>()[i] += noise.data<float>()[i];

  const Tensor R = random_tensor({4, width}, 13);
  Arena arena;
  Tensor out = Tensor::empty({4, width}, DType::kF32);
  auto loss = [&] {
    arena.reset();
    Rng rng(77);  // the same dropout masks every time
    enc->forward(out, arena, mode, &rng);
    return weighted_sum(out, R);
  };
  loss();
  params.zero_grad();
  enc->backward(R, arena);
  const Tensor grads = params.grads().clone();
  for (size_t i = 0; i < params.entries().size(); ++i) {
    const Tensor g = grads.slice(params.entries()[i].offset,
                                 params.entries()[i].offset + params.entries()[i].shape.numel());
    expect_gradient(params.entries()[i].name.c_str(), params.value(i), g, loss, 1e-3f, 1e-2, 2e-3);
  }
}

TEST(EncoderGradients, Table) { gradcheck(Encoder::kNone, 0, 12, Mode::kEval, 0.0f); }
TEST(EncoderGradients, PrefixMlp) { gradcheck(Encoder::kPrefixMlp, 6, 12, Mode::kEval, 0.0f); }
TEST(EncoderGradients, Mlp) { gradcheck(Encoder::kMlp, 6, 5, Mode::kEval, 0.0f); }
TEST(EncoderGradients, LstmTwoLayers) { gradcheck(Encoder::kLstm, 3, 5, Mode::kEval, 0.0f); }
TEST(EncoderGradients, LstmThreeLayersWithDropout) { gradcheck(Encoder::kLstm, 3, 5, Mode::kTrain, 0.4f, 3); }

TEST(Encoder, LstmDropoutOnlyWhileTraining) {
  PromptConfig cfg = PromptConfig::preset(Method::kPTuning);
  cfg.encoder_dropout = 0.5f;
  ParameterSet params;
  auto enc = PromptEncoder::create(cfg, {4, 8, 8}, params);
  params.finalize();
  Rng init_rng(3);
  enc->init(init_rng);
  Arena arena;
  Tensor eval = Tensor::empty({4, 8}, DType::kF32), train = Tensor::empty({4, 8}, DType::kF32);
  enc->forward(eval, arena);  // no Rng needed
  EXPECT_THROW(enc->forward(train, arena, Mode::kTrain, nullptr), Error);
  Rng rng(9);
  enc->forward(train, arena, Mode::kTrain, &rng);
  EXPECT_EQ(rng.offset(), uint64_t(1 * 4 * 2 * 8)) << "one mask between the two layers";
  double diff = 0.0;
  for (int64_t i = 0; i < eval.numel(); ++i) diff += std::fabs(eval.data<float>()[i] - train.data<float>()[i]);
  EXPECT_GT(diff, 1e-3);
}

TEST(Encoder, DefaultHiddenIsTokenDimAndNamesFollowPeft) {
  PromptConfig cfg = PromptConfig::preset(Method::kPrefixTuning);  // kPrefixMlp, encoder_hidden 0
  ParameterSet params;
  auto enc = PromptEncoder::create(cfg, {3, 10, 40}, params, "p.");
  EXPECT_EQ(params.entries()[params.index("p.transform.0.weight")].shape, Shape({10, 10}));
  EXPECT_EQ(params.entries()[params.index("p.transform.2.weight")].shape, Shape({40, 10}));
  EXPECT_EQ(params.entries()[params.index("p.transform.2.bias")].decay, Decay::kExempt);
  EXPECT_EQ(params.entries()[params.index("p.embedding.weight")].decay, Decay::kApply);
  params.finalize();
  EXPECT_EQ(enc->embedding().shape(), Shape({3, 10}));

  PromptConfig lstm = PromptConfig::preset(Method::kPTuning);
  ParameterSet p2;
  auto e2 = PromptEncoder::create(lstm, {3, 10, 10}, p2);
  EXPECT_EQ(p2.entries()[p2.index("prompt_encoder.lstm_head.weight_ih_l1_reverse")].shape, Shape({40, 20}));
  EXPECT_EQ(p2.entries()[p2.index("prompt_encoder.lstm_head.bias_hh_l0")].decay, Decay::kExempt);
  EXPECT_EQ(p2.entries()[p2.index("prompt_encoder.mlp_head.0.weight")].shape, Shape({20, 20}));
  EXPECT_EQ(p2.entries()[p2.index("prompt_encoder.mlp_head.2.weight")].shape, Shape({10, 20}));
}

TEST(Encoder, InitDistributionsMatchTorchDefaults) {
  PromptConfig cfg = PromptConfig::preset(Method::kPTuning);
  cfg.encoder_hidden = 64;
  ParameterSet params;
  auto enc = PromptEncoder::create(cfg, {50, 100, 32}, params);
  params.finalize();
  Rng rng(1);
  enc->init(rng);
  for (size_t i = 0; i < params.entries().size(); ++i) {
    const auto& e = params.entries()[i];
    const Tensor v = params.value(i);
    double sum = 0, sq = 0, amax = 0;
    for (int64_t j = 0; j < v.numel(); ++j) {
      const double x = v.data<float>()[j];
      sum += x;
      sq += x * x;
      amax = std::max(amax, std::fabs(x));
    }
    const double n = double(v.numel()), mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    double bound = 0;  // U(±b): sd b/√3
    if (e.name == "prompt_encoder.embedding.weight") {
      EXPECT_NEAR(mean, 0.0, 0.05) << e.name;
      EXPECT_NEAR(sd, 1.0, 0.05) << e.name;
      continue;
    }
    if (e.name.find("lstm_head") != std::string::npos) bound = 1.0 / std::sqrt(64.0);
    else if (e.name.find("mlp_head.0") != std::string::npos) bound = 1.0 / std::sqrt(128.0);
    else bound = 1.0 / std::sqrt(128.0);  // mlp_head.2: fan_in 2E
    EXPECT_LE(amax, bound) << e.name;
    EXPECT_GT(amax, 0.9 * bound) << e.name;
    if (n > 1000) EXPECT_NEAR(sd, bound / std::sqrt(3.0), 0.1 * bound) << e.name;
  }
}

TEST(Encoder, ChecksShapesAndOptions) {
  PromptConfig cfg;
  ParameterSet params;
  EXPECT_THROW(PromptEncoder::create(cfg, {0, 4, 4}, params), Error);
  cfg.encoder_dropout = 1.0f;
  EXPECT_THROW(PromptEncoder::create(cfg, {2, 4, 4}, params), Error);
  cfg.encoder_dropout = 0.0f;
  cfg.encoder = Encoder::kLstm;
  cfg.encoder_layers = 0;
  EXPECT_THROW(PromptEncoder::create(cfg, {2, 4, 4}, params), Error);
  cfg.encoder = Encoder::kNone;
  auto enc = PromptEncoder::create(cfg, {2, 4, 4}, params);
  params.finalize();
  Arena arena;
  Tensor wrong = Tensor::empty({2, 5}, DType::kF32);
  EXPECT_THROW(enc->forward(wrong, arena), Error);
}

// peft's TEXT init rule on ids from the real all-MiniLM-L6-v2 tokenizer:
// the fixture holds tokenizer(text)["input_ids"] and the ids peft copied.
TEST(PromptInit, TextRepeatsAndTruncatesAsPeft) {
  const io::SafetensorsFile f = fixture();
  int cases = 0;
  for (int k = 0; f.contains("text." + std::to_string(k) + ".ids"); ++k, ++cases) {
    const Tensor text = f.load("text." + std::to_string(k) + ".token_ids", DType::kI32);
    const Tensor want = f.load("text." + std::to_string(k) + ".ids", DType::kI32);
    std::vector<int32_t> ids(text.data<int32_t>(), text.data<int32_t>() + text.numel());
    const std::vector<int32_t> got = text_init_ids(ids, want.numel());
    EXPECT_EQ(got, std::vector<int32_t>(want.data<int32_t>(), want.data<int32_t>() + want.numel())) << "case " << k;
  }
  EXPECT_EQ(cases, 5);
  // Hand-checked: 3 ids to 7 → two whole copies and one more id.
  EXPECT_EQ(text_init_ids({1, 2, 3}, 7), (std::vector<int32_t>{1, 2, 3, 1, 2, 3, 1}));
  EXPECT_EQ(text_init_ids({1, 2, 3}, 2), (std::vector<int32_t>{1, 2}));
  EXPECT_THROW(text_init_ids({}, 2), Error);
}

TEST(PromptInit, CopiesWordEmbeddingRows) {
  const Tensor words = random_tensor({30, 6}, 21);
  Tensor table = Tensor::zeros({5, 6}, DType::kF32);
  init_from_token_ids(table, words, {4, 0, 29, 4, 7});
  for (int64_t p = 0; p < 5; ++p)
    for (int64_t j = 0; j < 6; ++j)
      EXPECT_EQ(table.data<float>()[p * 6 + j], words.data<float>()[int64_t(std::vector<int>{4, 0, 29, 4, 7}[size_t(p)]) * 6 + j]);
  EXPECT_THROW(init_from_token_ids(table, words, {4, 0, 30, 4, 7}), Error);
  EXPECT_THROW(init_from_token_ids(table, words, {4, 0}), Error);

  // bf16 word embeddings are widened to f32, as peft does.
  const Tensor words16 = words.to(DType::kBF16);
  init_from_token_ids(table, words16, {1, 2, 3, 4, 5});
  const Tensor back = words16.to(DType::kF32);
  EXPECT_EQ(table.data<float>()[6], back.data<float>()[2 * 6]);
}

TEST(PromptInit, SampleVocabRowsComeFromTheTable) {
  const int64_t V = 1000;
  Tensor words = Tensor::empty({V, 3}, DType::kF32);
  for (int64_t v = 0; v < V; ++v)
    for (int64_t j = 0; j < 3; ++j) words.data<float>()[v * 3 + j] = float(v) + 0.25f * float(j);
  Tensor table = Tensor::zeros({200, 3}, DType::kF32);
  Rng rng(8);
  const std::vector<int32_t> ids = init_from_vocab(table, words, rng);
  ASSERT_EQ(ids.size(), 200u);
  std::set<int32_t> distinct(ids.begin(), ids.end());
  EXPECT_GT(distinct.size(), 150u);  // uniform over 1000: ~182 distinct expected
  int64_t high = 0;
  for (int64_t p = 0; p < 200; ++p) {
    ASSERT_GE(ids[size_t(p)], 0);
    ASSERT_LT(ids[size_t(p)], V);
    high += ids[size_t(p)] >= V / 2;
    for (int64_t j = 0; j < 3; ++j)
      EXPECT_EQ(table.data<float>()[p * 3 + j], float(ids[size_t(p)]) + 0.25f * float(j));
  }
  EXPECT_GT(high, 70);
  EXPECT_LT(high, 130);
}

}  // namespace
}  // namespace ptune::peft
