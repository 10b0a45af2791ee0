// Generation on a GPU (model/generation.h runs where the weights live): with
// the frozen weights in f32 the greedy continuation equals transformers'
// token for token, with and without the KV cache and with a trained KV
// prefix seeding the cache — the goldens tests/model/test_llama.cpp checks
// the CPU against. In bf16 rounding may break a near tie between two
// logits, so there the check is the run itself: as many fresh tokens as
// asked, each a vocabulary id, and the same continuation twice. Skips
// without a GPU.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "framework/io/safetensors.h"
#include "framework/model/generation.h"
#include "framework/model/transformer.h"

namespace ptune::model {
namespace {

using namespace cuda_test;  // NOLINT: the shared helpers

class CudaGeneration : public ::testing::TestWithParam<DType> {};

TEST_P(CudaGeneration, GreedyMatchesTransformers) {
  SKIP_WITHOUT_GPU();
  const std::string dir = std::string(PTUNE_FIXTURES) + "/llama/llama";
  auto model = Transformer::load(dir);
  model->weights().to(kGpu, GetParam());
  const auto golden = io::SafetensorsFile::open(dir + "/golden.safetensors");
  const Tensor in = golden.load("gen_input_ids", DType::kI32);
  const std::vector<int32_t> prompt(in.data<int32_t>(), in.data<int32_t>() + in.numel());
  auto ids = [&](const char* name) {
    const Tensor t = golden.load(name, DType::kI32);
    return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + t.numel());
  };
  // The fixtures' prefix as a host KvPrefix, as `ptune generate` builds it from an adapter.
  const KvPrefix prefix = split_prefix_table(golden.load("prefix_embedding", DType::kF32), model->spec());
  GenerationPrompt with_prefix;
  with_prefix.prefix = &prefix;
  for (bool cache : {true, false}) {
    GenerationOptions o;
    o.max_new_tokens = 6;
    o.use_cache = cache;
    Rng rng(0);
    const auto plain = generate(*model, {prompt}, {}, o, rng).at(0);
    const auto prefixed = generate(*model, {prompt}, with_prefix, o, rng).at(0);
    if (GetParam() == DType::kF32) {
      EXPECT_EQ(plain, ids("gen_output_ids")) << "cache " << cache;
      EXPECT_EQ(prefixed, ids("gen_prefix_output_ids")) << "cache " << cache;
      continue;
    }
    for (const auto* out : {&plain, &prefixed}) {
      ASSERT_EQ(out->size(), prompt.size() + 6) << "cache " << cache;
      for (int32_t t : *out) EXPECT_TRUE(t >= 0 && t < model->spec().vocab_size) << t;
    }
    EXPECT_EQ(generate(*model, {prompt}, with_prefix, o, rng).at(0), prefixed) << "cache " << cache;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaGeneration, ::testing::Values(DType::kF32, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace ptune::model
