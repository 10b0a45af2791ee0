// Activation checkpointing (Transformer::set_recompute) against the plain
// run: the same hidden states, input gradients and prefix gradients, bit for
// bit (the rerun computes exactly what the forward did), in less arena
// memory. Pre-LN (GPT-2, LLaMA with RoPE and grouped-query attention, Qwen2
// with q/k/v biases) stops its rerun at the MLP's first GEMM; post-LN (BERT,
// RoBERTa) reruns the whole block; padding and a KV prefix in every layer.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/arena.h"
#include "framework/core/rng.h"
#include "framework/model/transformer.h"
#include "model/kv_prefix_util.h"

namespace ptune::model {
namespace {

struct Result {
  Tensor hidden, dinput;
  std::vector<Tensor> dkeys, dvalues;
  size_t peak = 0;
};

Result run(Transformer& model, bool recompute) {
  const ModelSpec& spec = model.spec();
  const int64_t B = 2, T = 9, P = 3, C = spec.hidden, L = spec.layers;
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
  ModelInputs in{embeds, positions, Tensor(), mask, &prefix};
  const Tensor hidden = model.forward(in, arena);

  Tensor dhidden = Tensor::empty({B, T, C}, DType::kF32);
  Rng(7).fill_normal(dhidden, 0, 1);
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

INSTANTIATE_TEST_SUITE_P(Archs, Recompute,
                         ::testing::Values("model/gpt2", "model/bert", "model/roberta", "llama/llama",
                                           "llama/qwen2"),
                         [](const auto& info) {
                           const std::string& p = info.param;
                           return p.substr(p.find('/') + 1);
                         });

}  // namespace
}  // namespace ptune::model
