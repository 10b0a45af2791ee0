// The transformer's forward variants against its plain run, on every
// architecture (pre-LN GPT-2; LLaMA with RoPE and grouped-query attention;
// Qwen2 with q/k/v biases; post-LN BERT, RoBERTa), with padding and a KV
// prefix in every layer:
// - activation checkpointing (Transformer::set_recompute): the same hidden
//   states, input and prefix gradients, bit for bit (the rerun computes
//   exactly what the forward did), in less arena memory. Pre-LN stops its
//   rerun at the MLP's first GEMM; post-LN reruns the whole block.
// - an evaluation forward (for_backward = false) in one block's memory.
// - selected rows (ModelInputs::rows, what a task head reads): the rows of
//   the full run's hidden state, and the gradients of a loss on those rows,
//   with the last block computing only them past its attention.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/arena.h"
#include "framework/core/rng.h"
#include "framework/model/transformer.h"
#include "expect_error.h"
#include "model/kv_prefix_util.h"

namespace ptune::model {
namespace {

struct Result {
  Tensor hidden, dinput;
  std::vector<Tensor> dkeys, dvalues;
  size_t peak = 0;
};

constexpr int64_t B = 2, T = 9, P = 3;

// Forward and backward of a loss Σ hidden·w (w random) on `rows` of the
// (B, T) batch, or on every row when rows is empty. With select, the model
// is asked for those rows only (ModelInputs::rows) and hidden is (N, C);
// without, it computes all rows and the loss reads the wanted ones
// (hidden (B, T, C), w zero elsewhere).
// for_backward false: an evaluation forward, no backward.
Result run(Transformer& model, bool recompute, const std::vector<int32_t>& rows = {}, bool select = false,
           bool for_backward = true) {
  const ModelSpec& spec = model.spec();
  const int64_t C = spec.hidden, L = spec.layers;
  const int64_t W = spec.attention_config().kv_width();
  model.set_recompute(recompute);
  Arena arena;

  Tensor ids = Tensor::empty({B, T}, DType::kI32), mask = Tensor::empty({B, T}, DType::kI32);
  for (int64_t i = 0; i < B * T; ++i) {
    ids.data<int32_t>()[i] = int32_t((i * 7919 + 13) % spec.vocab_size);
    mask.data<int32_t>()[i] = i >= B * T - 3 ? 0 : 1;  // the second row ends in 3 padding tokens
  }
  const KvPrefix prefix = testing::random_prefix(L, P, W);
  KvPrefix dprefix = testing::zero_prefix_grads(L, P, W);
  Tensor embeds = arena.alloc({B, T, C}), positions = arena.alloc({B, T}, DType::kI32);
  model.embed_tokens(embeds, ids);
  model.default_position_ids(positions, ids, P);
  ModelInputs in{embeds, positions, Tensor(), mask, &prefix, for_backward};
  std::vector<int32_t> wanted = rows;
  if (select) in.rows = Tensor::borrow(wanted.data(), {int64_t(wanted.size())}, DType::kI32);
  const Tensor hidden = model.forward(in, arena);
  if (!for_backward) return {.hidden = hidden.clone()};

  // w for every row, or for the wanted ones in their order.
  const int64_t N = rows.empty() ? B * T : int64_t(rows.size());
  Tensor w = Tensor::empty({N, C}, DType::kF32);
  Rng(7).fill_normal(w, 0, 1);
  Tensor dhidden = Tensor::zeros(hidden.shape(), DType::kF32);
  for (int64_t i = 0; i < N; ++i)
    dhidden.view({hidden.numel() / C, C}).select(select ? i : rows.empty() ? i : rows[size_t(i)]).copy_from(w.select(i));
  ModelGrads grads{arena.zeros({B, T, C}), &dprefix};
  model.backward(dhidden, grads, arena);
  return {hidden.clone(), grads.input_embeds.clone(), dprefix.keys, dprefix.values, arena.peak_bytes()};
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

class Recompute : public ::testing::TestWithParam<std::string> {};

TEST_P(Recompute, GradientsAreTheSameBitsInLessMemory) {
  auto model = Transformer::load(std::string(PTUNE_FIXTURES) + "/" + GetParam());
  const Result plain = run(*model, false);
  const Result rerun = run(*model, true);
  EXPECT_TRUE(same_bits(plain.hidden, rerun.hidden));
  EXPECT_TRUE(same_bits(plain.dinput, rerun.dinput));
  for (size_t l = 0; l < plain.dkeys.size(); ++l) {
    EXPECT_TRUE(same_bits(plain.dkeys[l], rerun.dkeys[l])) << "layer " << l << " keys";
    EXPECT_TRUE(same_bits(plain.dvalues[l], rerun.dvalues[l])) << "layer " << l << " values";
  }
  EXPECT_LT(rerun.peak, plain.peak);
}

// An evaluation forward (nothing kept for backward) computes the same
// hidden states in one block's memory: each block's activations are freed
// once it ran and its input buffer takes the next block's output, so its
// peak does not grow with the number of blocks (a training forward's does).
TEST(RecomputeEval, EvaluationForwardHoldsOneBlock) {
  for (const Arch arch : {Arch::kGpt2, Arch::kBert, Arch::kLlama}) {
    std::vector<size_t> train_peaks, eval_peaks;
    for (const int64_t layers : {2, 5}) {
      ModelSpec spec = ModelSpec::tiny(arch);
      spec.layers = layers;
      SCOPED_TRACE(fmt::format("{}, {} blocks", spec.arch_name(), layers));
      Rng rng(3);
      Transformer model(spec, ModelWeights::random(spec, {}, rng));
      const int64_t B = 3, T = 11, P = 2, C = spec.hidden;
      const KvPrefix prefix = testing::random_prefix(layers, P, spec.attention_config().kv_width());
      Tensor ids = Tensor::empty({B, T}, DType::kI32);
      for (int64_t i = 0; i < B * T; ++i) ids.data<int32_t>()[i] = int32_t((i * 31 + 5) % spec.vocab_size);
      auto forward = [&](bool for_backward, std::vector<size_t>& peaks) {
        Arena arena;
        Tensor embeds = arena.alloc({B, T, C}), positions = arena.alloc({B, T}, DType::kI32);
        model.embed_tokens(embeds, ids);
        model.default_position_ids(positions, ids, P);
        ModelInputs in{embeds, positions, Tensor(), Tensor(), &prefix, for_backward};
        const Tensor hidden = model.forward(in, arena).clone();
        peaks.push_back(arena.peak_bytes());
        return hidden;
      };
      EXPECT_TRUE(same_bits(forward(true, train_peaks), forward(false, eval_peaks)));
    }
    EXPECT_EQ(eval_peaks[0], eval_peaks[1]);
    EXPECT_GT(train_peaks[1], train_peaks[0]);
    EXPECT_LT(eval_peaks[0], train_peaks[0]);
  }
}

// |a − b| ≤ 1e-5 + 1e-4·|b|: the selected rows' GEMMs have fewer rows, so
// their sums may be blocked differently — not the same bits.
void expect_close(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.numel(), b.numel()) << what;
  int bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float x = a.data<float>()[i], y = b.data<float>()[i];
    if (!(std::fabs(x - y) <= 1e-5f + 1e-4f * std::fabs(y)) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: " << x << " vs " << y;
  }
}

class SelectedRows : public ::testing::TestWithParam<std::string> {};

// The first token of each sequence, the last real one, a padded one, in a
// head's own order (not sorted); the model's answer comes in that order.
const std::vector<int32_t> kRows = {int32_t(T + T - 4), 0, int32_t(T), 5, int32_t(2 * T - 1)};

TEST_P(SelectedRows, MatchTheFullRunsRowsAndGradients) {
  auto model = Transformer::load(std::string(PTUNE_FIXTURES) + "/" + GetParam());
  const int64_t C = model->spec().hidden;
  for (const bool recompute : {false, true}) {
    SCOPED_TRACE(recompute ? "recompute" : "plain");
    const Result full = run(*model, recompute, kRows, false);
    const Result picked = run(*model, recompute, kRows, true);
    ASSERT_EQ(picked.hidden.shape(), Shape({int64_t(kRows.size()), C}));
    for (size_t i = 0; i < kRows.size(); ++i)
      expect_close(picked.hidden.select(int64_t(i)), full.hidden.view({B * T, C}).select(kRows[i]),
                   fmt::format("hidden row {}", kRows[i]));
    expect_close(picked.dinput, full.dinput, "d input_embeds");
    for (size_t l = 0; l < full.dkeys.size(); ++l) {
      expect_close(picked.dkeys[l], full.dkeys[l], fmt::format("layer {} d keys", l));
      expect_close(picked.dvalues[l], full.dvalues[l], fmt::format("layer {} d values", l));
    }
    // The loss reaches the input through every row's keys and values, not
    // only through the selected rows: the test would pass on zeros otherwise.
    EXPECT_GT(std::fabs(full.dinput.data<float>()[C + 1]), 0.0f);
    EXPECT_LT(picked.peak, full.peak);
  }
  // An evaluation forward on the rows: the same bits as the training one.
  const Result eval = run(*model, false, kRows, true, false);
  EXPECT_TRUE(same_bits(eval.hidden, run(*model, false, kRows, true).hidden));
}

TEST(SelectedRowsErrors, NameTheBadRow) {
  auto model = Transformer::load(std::string(PTUNE_FIXTURES) + "/model/gpt2");
  for (const std::vector<int32_t>& rows : {std::vector<int32_t>{0, 3, 3}, std::vector<int32_t>{int32_t(B * T)},
                                           std::vector<int32_t>{-1}})
    testing::expect_error([&] { run(*model, false, rows, true); }, {"rows: row", "outside [0, 18) or repeated"});
}

// Every architecture's fixture, named after it.
const std::vector<std::string> kFixtures = {"model/gpt2",  "model/bert",  "model/roberta", "llama/llama",
                                            "llama/qwen2", "llama/qwen3", "llama/smollm3", "llama/gemma3",
                                            "llama/phi3_long"};
std::string fixture_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param.substr(info.param.find('/') + 1);
}

INSTANTIATE_TEST_SUITE_P(Archs, Recompute, ::testing::ValuesIn(kFixtures), fixture_name);
INSTANTIATE_TEST_SUITE_P(Archs, SelectedRows, ::testing::ValuesIn(kFixtures), fixture_name);

}  // namespace
}  // namespace ptune::model
