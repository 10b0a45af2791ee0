// Loading checkpoints: round trips through the Hugging Face layout, and
// clear errors for configs and checkpoints that do not fit.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include "framework/io/checkpoint.h"
#include "framework/io/json_file.h"
#include "framework/model/spec.h"
#include "framework/model/weights.h"
#include "expect_error.h"

namespace ptune::model {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("ptune_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

class Weights : public ::testing::TestWithParam<Arch> {};

TEST_P(Weights, RandomWeightsRoundTripThroughHuggingFaceLayout) {
  const ModelSpec spec = ModelSpec::tiny(GetParam());
  const bool encoder = spec.arch == Arch::kBert || spec.arch == Arch::kRoberta;
  std::set<Component> components;
  if (encoder) components = {Component::kMlmHead, Component::kPooler};
  Rng rng(5);
  auto weights = ModelWeights::random(spec, components, rng);
  // Norm weights away from 1, so that Gemma's stored w (held as 1 + w) is not 0.
  Tensor& final_norm = weights->heads.final_norm_w;
  if (final_norm.defined()) rng.fill_normal(final_norm, 1.0f, 0.2f);
  const fs::path dir = temp_dir(spec.arch_name());
  io::write_json_file((dir / "config.json").string(), spec.to_config());
  const auto tensors = weights->to_checkpoint();
  io::write_sharded(dir.string(), tensors, 100000);  // several shards
  if (spec.norm_plus_one)  // the checkpoint holds w, as transformers' Gemma3RMSNorm stores it
    for (const auto& [name, t] : tensors)
      if (name == "model.norm.weight")
        for (int64_t i = 0; i < t.numel(); ++i)
          EXPECT_EQ(t.data<float>()[i], final_norm.data<float>()[i] - 1.0f) << i;

  const ModelSpec reread = ModelSpec::from_directory(dir.string());
  EXPECT_EQ(reread.hidden, spec.hidden);
  EXPECT_EQ(reread.intermediate, spec.intermediate);
  EXPECT_EQ(reread.position_offset, spec.position_offset);
  EXPECT_EQ(reread.local_layers, spec.local_layers);
  EXPECT_EQ(reread.rope_layers, spec.rope_layers);
  auto loaded = ModelWeights::load(reread, io::CheckpointReader::open(dir.string()));
  EXPECT_EQ(loaded->has(Component::kPooler), encoder);
  ASSERT_EQ(loaded->units().size(), weights->units().size());
  for (size_t u = 0; u < weights->units().size(); ++u) {
    const Tensor& a = weights->units()[u].flat;
    const Tensor& b = loaded->units()[u].flat;
    ASSERT_EQ(a.numel(), b.numel());
    EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes())) << weights->units()[u].name;
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Archs, Weights,
                         ::testing::Values(Arch::kGpt2, Arch::kBert, Arch::kRoberta, Arch::kQwen3, Arch::kSmolLM3,
                                           Arch::kGemma3, Arch::kPhi3),
                         [](const auto& info) { return arch_name(info.param); });

TEST(Weights, QkvIsStackedFromBertsSeparateProjections) {
  const std::string dir = std::string(PTUNE_FIXTURES) + "/model/bert";
  const ModelSpec spec = ModelSpec::from_directory(dir);
  const auto checkpoint = io::CheckpointReader::open(dir);
  auto weights = ModelWeights::load(spec, checkpoint);
  const Tensor key = checkpoint.load("bert.encoder.layer.1.attention.self.key.weight");
  const Tensor& qkv = weights->blocks[1].qkv_w;  // (3C, C): rows C..2C are the keys
  EXPECT_EQ(0, std::memcmp(qkv.slice(spec.hidden, 2 * spec.hidden).raw(), key.raw(), key.nbytes()));
}

TEST(Weights, Gpt2Conv1DIsTransposed) {
  const std::string dir = std::string(PTUNE_FIXTURES) + "/model/gpt2";
  const ModelSpec spec = ModelSpec::from_directory(dir);
  const auto checkpoint = io::CheckpointReader::open(dir);
  auto weights = ModelWeights::load(spec, checkpoint);
  const Tensor fc = checkpoint.load("transformer.h.0.mlp.c_fc.weight");  // (C, I) as stored
  const Tensor& mine = weights->blocks[0].fc_w;                          // (I, C)
  EXPECT_EQ(mine.data<float>()[3 * spec.hidden + 7], fc.data<float>()[7 * spec.intermediate + 3]);
}

// A sharded load keeps each rank's part of every unit but the embeddings:
// the parts of ranks 0..N−1, laid end to end, are the whole load's flat
// buffer followed by zeros (the padding), byte for byte. GPT-2 reads
// transposed Conv1D sources, BERT and the LLaMA family stack q/k/v (and
// gate/up) from several tensors, so parts start and end inside sources.
void expect_parts_tile_the_whole_load(const std::string& dir) {
  const ModelSpec spec = ModelSpec::from_directory(dir);
  const auto checkpoint = io::CheckpointReader::open(dir);
  const auto whole = ModelWeights::load(spec, checkpoint);
  for (const int64_t N : {2, 3, 7}) {
    std::vector<std::unique_ptr<ModelWeights>> parts;
    for (int64_t r = 0; r < N; ++r) parts.push_back(ModelWeights::load(spec, checkpoint, {{r, N}}));
    for (size_t u = 0; u < whole->units().size(); ++u) {
      const WeightUnit& w = whole->units()[u];
      SCOPED_TRACE(fmt::format("{} of {}, {} ranks", w.name, dir, N));
      if (u == 0) {  // the embeddings stay whole
        for (const auto& p : parts) EXPECT_TRUE(p->units()[0].flat.defined() && !p->units()[0].shard.defined());
        continue;
      }
      const int64_t per = (w.numel + N - 1) / N;
      std::vector<float> tiled;
      for (const auto& p : parts) {
        const WeightUnit& mine = p->units()[u];
        ASSERT_FALSE(mine.flat.defined());
        ASSERT_EQ(mine.shard.numel(), per);
        tiled.insert(tiled.end(), mine.shard.data<float>(), mine.shard.data<float>() + per);
      }
      ASSERT_EQ(0, std::memcmp(tiled.data(), w.flat.raw(), w.flat.nbytes()));
      for (size_t i = size_t(w.numel); i < tiled.size(); ++i) ASSERT_EQ(tiled[i], 0.0f) << "padding " << i;
    }
    EXPECT_EQ(parts.back()->shard_layout(), (ShardLayout{N - 1, N}));
  }
}

TEST(Weights, ShardedLoadReadsEachRanksPartOfTheWholeLoad) {
  const std::string root = PTUNE_FIXTURES;
  for (const std::string dir :
       {"/model/gpt2", "/model/bert", "/model/roberta", "/llama/llama", "/llama/qwen2_cls", "/llama/qwen3",
        "/llama/smollm3", "/llama/gemma3", "/llama/phi3_long"})
    expect_parts_tile_the_whole_load(root + dir);
}

// A bf16 checkpoint in several files: each part converts just its range.
TEST(Weights, ShardedLoadOfABf16CheckpointInShards) {
  const ModelSpec spec = ModelSpec::tiny(Arch::kGpt2);
  Rng rng(9);
  auto weights = ModelWeights::random(spec, {}, rng);
  auto tensors = weights->to_checkpoint();
  for (auto& [name, t] : tensors) t = t.to(DType::kBF16);
  const fs::path dir = temp_dir("bf16_parts");
  io::write_json_file((dir / "config.json").string(), spec.to_config());
  io::write_sharded(dir.string(), tensors, 50000);
  ASSERT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  expect_parts_tile_the_whole_load(dir.string());
  fs::remove_all(dir);
}

TEST(Weights, ShardLayoutOutOfRangeIsRefused) {
  const std::string dir = std::string(PTUNE_FIXTURES) + "/model/gpt2";
  const ModelSpec spec = ModelSpec::from_directory(dir);
  const std::string msg = error_of([&] { ModelWeights::load(spec, io::CheckpointReader::open(dir), {{2, 2}}); });
  EXPECT_NE(msg.find("part 2 of 2 ranks"), std::string::npos) << msg;
}

TEST(Weights, MissingTensorIsNamed) {
  const ModelSpec spec = ModelSpec::tiny(Arch::kGpt2);
  Rng rng(1);
  auto weights = ModelWeights::random(spec, {}, rng);
  auto tensors = weights->to_checkpoint();
  std::erase_if(tensors, [](const auto& kv) { return kv.first == "transformer.h.1.attn.c_proj.bias"; });
  const fs::path dir = temp_dir("missing");
  io::write_sharded(dir.string(), tensors, uint64_t(1) << 30);
  const std::string msg = error_of([&] { ModelWeights::load(spec, io::CheckpointReader::open(dir.string())); });
  EXPECT_NE(msg.find("missing tensor 'transformer.h.1.attn.c_proj.bias'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(Weights, WrongShapeIsNamed) {
  ModelSpec spec = ModelSpec::tiny(Arch::kBert);
  Rng rng(1);
  auto weights = ModelWeights::random(spec, {}, rng);
  const fs::path dir = temp_dir("shape");
  io::write_sharded(dir.string(), weights->to_checkpoint(), uint64_t(1) << 30);
  spec.intermediate = 96;  // the config now disagrees with the weights
  const std::string msg = error_of([&] { ModelWeights::load(spec, io::CheckpointReader::open(dir.string())); });
  EXPECT_NE(msg.find("intermediate.dense.weight' has shape (128, 64), expected (96, 64)"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(Spec, ConfigErrorsNameFileAndKey) {
  using nlohmann::json;
  json c = ModelSpec::tiny(Arch::kBert).to_config();
  c.erase("hidden_size");
  EXPECT_NE(error_of([&] { ModelSpec::from_config(c, "x/config.json"); }).find("x/config.json: missing key 'hidden_size'"),
            std::string::npos);
  c = ModelSpec::tiny(Arch::kGpt2).to_config();
  c["n_head"] = "twelve";
  EXPECT_NE(error_of([&] { ModelSpec::from_config(c, "c.json"); }).find("'n_head' must be an integer"),
            std::string::npos);
  c = ModelSpec::tiny(Arch::kGpt2).to_config();
  c["n_head"] = 5;  // 64 is not divisible by 5
  EXPECT_NE(error_of([&] { ModelSpec::from_config(c, "c.json"); }).find("not divisible"), std::string::npos);
  c["model_type"] = "t5";
  EXPECT_NE(error_of([&] { ModelSpec::from_config(c, "c.json"); }).find("unsupported model_type 't5'"),
            std::string::npos);
  c = ModelSpec::tiny(Arch::kBert).to_config();
  c["position_embedding_type"] = "relative_key";
  EXPECT_NE(error_of([&] { ModelSpec::from_config(c, "c.json"); }).find("position_embedding_type"),
            std::string::npos);
}

// The CLI end to end: init-model writes a directory that inspect (and
// transformers: tests/golden/check_init_model.py) reads.
TEST(Cli, InitModelThenInspect) {
  const fs::path dir = temp_dir("cli");
  const std::string out = (dir / "out.txt").string();
  const auto describe = [&](const std::string& arch) {  // init-model --arch, then inspect
    const std::string model = (dir / arch).string();
    EXPECT_EQ(0, std::system(fmt::format("{} init-model --arch {} --out {} > {}", PTUNE_BINARY, arch, model, out)
                                 .c_str()));
    EXPECT_EQ(0, std::system(fmt::format("{} inspect {} > {}", PTUNE_BINARY, model, out).c_str()));
    return io::read_text_file(out);
  };
  // Lines each description must hold; the parameter counts are what
  // transformers counts for the same directory.
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"roberta", {"architecture roberta", "parameters   173,480"}},
      {"qwen3", {"norm         rmsnorm-pre, per-head q/k rmsnorm", "parameters   202,112"}},
      {"smollm3", {"attention    causal, no RoPE in layers 1", "parameters   138,048"}},
      {"gemma3_text",
       {"norm         rmsnorm-pre+post, per-head q/k rmsnorm", "attention    causal, sliding window 4096 in layers 0",
        "parameters   138,368"}},
      {"phi3", {"rope         theta 10000\n", "parameters   202,048"}},
  };
  for (const auto& [arch, lines] : cases) {
    const std::string text = describe(arch);
    for (const std::string& line : lines) EXPECT_NE(text.find(line), std::string::npos) << arch << ":\n" << text;
  }
  // A window over every layer (the mistral golden's 4).
  EXPECT_EQ(0, std::system(fmt::format("{} inspect {}/llama/mistral > {}", PTUNE_BINARY, PTUNE_FIXTURES, out).c_str()));
  EXPECT_NE(io::read_text_file(out).find("attention    causal, sliding window 4\n"),
            std::string::npos)
      << io::read_text_file(out);
  EXPECT_NE(0, std::system(fmt::format("{} inspect {} 2> {}", PTUNE_BINARY, dir.string(), out).c_str()));
  EXPECT_NE(io::read_text_file(out).find("config.json"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ptune::model
