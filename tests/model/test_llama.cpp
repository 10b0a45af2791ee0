// LLaMA-family decoders (LLaMA with GQA 4:1, head_dim ≠ hidden/heads and
// llama3 RoPE scaling; Mistral with linear scaling; Qwen2 with q/k/v biases
// and dynamic scaling; Qwen2ForSequenceClassification's score head; Qwen3
// with its per-head q/k norms and attention biases; SmolLM3 with a NoPE
// layer, MLP biases and tied embeddings; Gemma 3; Phi-3's fused projections,
// and its partial rotation with LongRoPE) against transformers + peft.
// Fixtures: tests/golden/gen_llama_fixtures.py.
#include <gtest/gtest.h>

#include "expect_close.h"
#include "expect_error.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "framework/core/arena.h"
#include "framework/core/rng.h"
#include "framework/io/checkpoint.h"
#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"
#include "framework/model/generation.h"
#include "framework/model/heads.h"
#include "framework/model/transformer.h"

namespace ptune::model {
namespace {

using ptune::testing::expect_close;

constexpr double kForwardTol = 1e-5, kGradTol = 1e-4;

class Llama : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir = std::string(PTUNE_FIXTURES) + "/llama/" + GetParam();
    model = Transformer::load(dir);
    golden = std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(dir + "/golden.safetensors"));
    ids = golden->load("input_ids", DType::kI32);
    mask = golden->load("attention_mask", DType::kI32);
    B = ids.size(0);
    T = ids.size(1);
    C = model->spec().hidden;
    classifier = model->weights().has(Component::kScore);
  }
  Tensor f32(const char* name) const { return golden->load(name, DType::kF32); }

  // hidden (+ prefix) → the probe Σ hidden·w_hidden + Σ out·w_logits; checks
  // `<tag>hidden_states`, `<tag>logits`, `<tag>grad_inputs_embeds`.
  void run_probe(const std::string& tag, const KvPrefix* prefix, KvPrefix* dprefix) {
    Arena arena;
    Tensor embeds = arena.alloc({B, T, C});
    model->embed_tokens(embeds, ids);
    Tensor positions = arena.alloc({B, T}, DType::kI32);
    model->default_position_ids(positions, ids, prefix ? prefix->length() : 0);
    const Tensor want_pos = golden->load(prefix ? "prefix_position_ids" : "position_ids", DType::kI32);
    for (int64_t i = 0; i < B * T; ++i) ASSERT_EQ(positions.data<int32_t>()[i], want_pos.data<int32_t>()[i]);
    ModelInputs in;
    in.input_embeds = embeds;
    in.position_ids = positions;
    in.attention_mask = mask;
    in.prefix = prefix;
    Tensor hidden = model->forward(in, arena);
    expect_close((tag + "hidden_states").c_str(), hidden, f32((tag + "hidden_states").c_str()), kForwardTol);

    Tensor dhidden = arena.zeros({B, T, C});
    dhidden.copy_from(f32("w_hidden"));
    if (classifier) {
      ScoreHead head(*model);
      Tensor logits = arena.alloc({B, head.labels()});
      head.forward(logits, hidden, ids, arena);
      expect_close((tag + "logits").c_str(), logits, f32((tag + "logits").c_str()), kForwardTol);
      head.backward(dhidden, f32("w_logits"), arena);
    } else {
      LmHead head(*model);
      Tensor logits = arena.alloc({B, T, model->spec().vocab_size});
      head.forward(logits, hidden, arena);
      expect_close((tag + "logits").c_str(), logits, f32((tag + "logits").c_str()), kForwardTol);
      head.backward(dhidden, f32("w_logits"), arena);
    }
    ModelGrads grads;
    grads.input_embeds = arena.zeros({B, T, C});
    grads.prefix = dprefix;
    model->backward(dhidden, grads, arena);
    expect_close((tag + "grad_inputs_embeds").c_str(), grads.input_embeds, f32((tag + "grad_inputs_embeds").c_str()),
                 kGradTol);
  }

  std::string dir;
  std::unique_ptr<Transformer> model;
  std::unique_ptr<io::SafetensorsFile> golden;
  Tensor ids, mask;
  int64_t B = 0, T = 0, C = 0;
  bool classifier = false;
};

TEST_P(Llama, SpecReadsTheConfig) {
  const ModelSpec& s = model->spec();
  EXPECT_EQ(s.positions, PositionKind::kRope);
  EXPECT_EQ(s.norm, ops::NormKind::kRmsNorm);
  EXPECT_TRUE(s.gated_mlp);
  EXPECT_EQ(s.tie_word_embeddings, GetParam() == "smollm3" || GetParam() == "gemma3" || GetParam() == "phi3_long");
  EXPECT_EQ(s.fused_projections, GetParam().starts_with("phi3"));
  // Phi-3's partial rotation and LongRoPE: 4 of 8 columns, √(1 + ln 8 / ln 8) on cos and sin.
  EXPECT_EQ(s.rotary_dim, GetParam() == "phi3_long" ? 4 : s.head_dim);
  if (GetParam() == "phi3_long") {
    EXPECT_EQ(s.rope.scaling, RopeScaling::kLongRope);
    EXPECT_EQ(s.rope.original_max_positions, 8);
    EXPECT_FLOAT_EQ(s.rope.attention_factor, std::sqrt(2.0f));
  }
  if (GetParam() == "llama") {
    EXPECT_EQ(s.heads, 4);
    EXPECT_EQ(s.kv_heads, 1);
    EXPECT_EQ(s.head_dim, 12);
    EXPECT_EQ(s.rope.scaling, RopeScaling::kLlama3);
  }
  EXPECT_EQ(s.qkv_bias, GetParam().starts_with("qwen"));
  EXPECT_EQ(s.proj_bias, GetParam() == "qwen3");  // Qwen3's attention_bias covers o_proj too (Gemma's: false)
  EXPECT_EQ(s.qk_norm, GetParam() == "qwen3" || GetParam() == "gemma3");
  EXPECT_EQ(s.mlp_bias, GetParam() == "smollm3");
  // SmolLM3's NoPE layers: the second layer takes no RoPE.
  EXPECT_EQ(s.rotates(1), GetParam() != "smollm3");
  EXPECT_TRUE(s.rotates(0));
  if (GetParam() == "qwen3") {
    EXPECT_EQ(s.head_dim, 12);
    // Qwen3Config's head_dim default is 128, not hidden / heads.
    nlohmann::json c = io::read_json_file(dir + "/config.json");
    c.erase("head_dim");
    EXPECT_EQ(ModelSpec::from_config(c, "c.json").head_dim, 128);
  }
}

TEST_P(Llama, ForwardAndInputGradients) { run_probe("", nullptr, nullptr); }

// peft's prefix row for GQA: layer l's keys at columns [2l·W, (2l+1)·W) and
// values at [(2l+1)·W, (2l+2)·W), W = KVH·D; prefix keys are not rotated.
TEST_P(Llama, KvPrefixForwardAndGradients) {
  const int64_t L = model->spec().layers, W = model->spec().kv_heads * model->spec().head_dim;
  const Tensor table = f32("prefix_embedding");
  ASSERT_EQ(table.size(1), 2 * L * W);
  const int64_t P = table.size(0);
  KvPrefix prefix, dprefix;
  for (int64_t l = 0; l < L; ++l)
    for (int kv = 0; kv < 2; ++kv) {
      Tensor t = Tensor::empty({P, W}, DType::kF32);
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < W; ++c) t.data<float>()[p * W + c] = table.data<float>()[p * 2 * L * W + (2 * l + kv) * W + c];
      (kv ? prefix.values : prefix.keys).push_back(t);
      (kv ? dprefix.values : dprefix.keys).push_back(Tensor::zeros({P, W}, DType::kF32));
    }
  run_probe("prefix_", &prefix, &dprefix);
  Tensor dtable = Tensor::empty(table.shape(), DType::kF32);
  for (int64_t l = 0; l < L; ++l)
    for (int kv = 0; kv < 2; ++kv)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < W; ++c)
          dtable.data<float>()[p * 2 * L * W + (2 * l + kv) * W + c] =
              (kv ? dprefix.values : dprefix.keys)[size_t(l)].data<float>()[p * W + c];
  expect_close("grad_prefix_embedding", dtable, f32("grad_prefix_embedding"), kGradTol);
}

// Greedy continuation: token ids equal transformers' generate, with the KV
// cache and (except dynamic RoPE and LongRoPE, whose frequencies depend on the cache) without.
TEST_P(Llama, GreedyGenerationMatchesTransformers) {
  if (classifier) GTEST_SKIP() << "a classifier";
  const Tensor in = golden->load("gen_input_ids", DType::kI32);
  const std::vector<int32_t> prompt(in.data<int32_t>(), in.data<int32_t>() + in.numel());
  auto expect_ids = [&](const char* name, const std::vector<int32_t>& got) {
    const Tensor want = golden->load(name, DType::kI32);
    EXPECT_EQ(got, std::vector<int32_t>(want.data<int32_t>(), want.data<int32_t>() + want.numel())) << name;
  };
  // The fixtures' prefix (P, 2·L·KVH·D) as a KvPrefix, as `ptune generate` builds it from an adapter.
  const KvPrefix prefix = split_prefix_table(f32("prefix_embedding"), model->spec());
  for (bool cache : {true, false}) {
    if (!cache && model->spec().rope.length_dependent()) continue;
    GenerationOptions o;
    o.max_new_tokens = 6;
    o.use_cache = cache;
    Rng rng(0);
    expect_ids("gen_output_ids", generate(*model, {prompt}, {}, o, rng).at(0));
    GenerationPrompt gp;
    gp.prefix = &prefix;
    const auto both = generate(*model, {prompt, prompt}, gp, o, rng);
    expect_ids("gen_prefix_output_ids", both.at(0));
    EXPECT_EQ(both.at(0), both.at(1));
    // EOS stops early and is kept.
    const Tensor want = golden->load("gen_output_ids", DType::kI32);
    o.eos_ids = {want.data<int32_t>()[prompt.size()]};
    EXPECT_EQ(generate(*model, {prompt}, {}, o, rng).at(0).size(), prompt.size() + 1);
  }
}

// Prompt tuning / P-Tuning rows before the text (GenerationPrompt::
// input_rows), with and without the cache, against a plain greedy loop:
// forward of [rows; embeddings of the sequence so far] at positions 0…,
// the LM head on the last row, argmax.
TEST_P(Llama, GreedyGenerationWithInputRowsMatchesAPlainLoop) {
  if (classifier) GTEST_SKIP() << "a classifier";
  if (model->spec().rope.length_dependent()) GTEST_SKIP() << "dynamic RoPE / LongRoPE depend on the cache";
  const Tensor in = golden->load("gen_input_ids", DType::kI32);
  const std::vector<int32_t> prompt(in.data<int32_t>(), in.data<int32_t>() + in.numel());
  Tensor rows = Tensor::empty({3, C}, DType::kF32);
  Rng(7).fill_normal(rows, 0.0f, 1.0f);
  const int64_t V = model->spec().vocab_size, R = rows.size(0), steps = 5;

  std::vector<int32_t> want = prompt;
  LmHead head(*model);
  Arena arena;
  for (int64_t k = 0; k < steps; ++k) {
    arena.reset();
    const int64_t n = int64_t(want.size()), T = R + n;
    Tensor ids = Tensor::empty({1, n}, DType::kI32);
    std::copy(want.begin(), want.end(), ids.data<int32_t>());
    Tensor e = arena.alloc({1, n, C}), x = arena.alloc({1, T, C}), pos = Tensor::empty({1, T}, DType::kI32);
    model->embed_tokens(e, ids);
    x.select(0).slice(0, R).copy_from(rows);
    x.select(0).slice(R, T).copy_from(e.select(0));
    for (int64_t t = 0; t < T; ++t) pos.data<int32_t>()[t] = int32_t(t);
    ModelInputs mi;
    mi.input_embeds = x;
    mi.position_ids = pos;
    Tensor hidden = model->forward(mi, arena), logits = arena.alloc({1, V});
    head.forward(logits, hidden.select(0).slice(T - 1, T), arena);
    want.push_back(int32_t(std::max_element(logits.data<float>(), logits.data<float>() + V) - logits.data<float>()));
  }
  GenerationPrompt gp;
  gp.input_rows = rows;
  for (bool cache : {true, false}) {
    GenerationOptions o;
    o.max_new_tokens = steps;
    o.use_cache = cache;
    Rng rng(0);
    EXPECT_EQ(generate(*model, {prompt}, gp, o, rng).at(0), want) << "cache " << cache;
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, Llama,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen2_cls", "qwen3", "smollm3", "gemma3", "phi3",
                                           "phi3_long"),
                         [](const auto& info) { return info.param; });

TEST(LlamaSpec, RefusesWhatItDoesNotImplement) {
  const nlohmann::json base = {{"model_type", "llama"},         {"vocab_size", 10},         {"hidden_size", 8},
                               {"num_hidden_layers", 1},        {"num_attention_heads", 2}, {"intermediate_size", 8},
                               {"max_position_embeddings", 16}};
  EXPECT_NO_THROW(ModelSpec::from_config(base, "c.json"));
  auto refused = [&](nlohmann::json patch, const std::string& key) {
    nlohmann::json c = base;
    c.merge_patch(patch);
    SCOPED_TRACE(patch.dump());
    testing::expect_error([&] { ModelSpec::from_config(c, "c.json"); }, {key, "c.json"});
  };
  refused({{"rope_parameters", {{"rope_type", "yarn"}, {"factor", 2.0}}}}, "rope_parameters.rope_type");
  refused({{"rope_scaling", {{"type", "longrope"}}}}, "rope_scaling.short_factor");
  refused({{"rope_scaling", {{"type", "su"}}}}, "rope_scaling.rope_type");  // Phi-3's old name, Phi-3 only
  refused({{"partial_rotary_factor", 0.5}}, "partial_rotary_factor");
  refused({{"num_key_value_heads", 3}}, "num_key_value_heads");
  refused({{"rope_parameters", {{"rope_type", "linear"}}}}, "factor");
  // Values that become f32 or a position count stay in range (no overflowing conversion).
  refused({{"rope_theta", 1e300}}, "rope_theta");
  refused({{"rope_parameters", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1e-300}}}},
          "low_freq_factor");
  refused({{"rope_parameters", {{"rope_type", "llama3"}, {"factor", 8.0}, {"original_max_position_embeddings", 1e300}}}},
          "original_max_position_embeddings");
  refused({{"rope_parameters",
            {{"rope_type", "longrope"}, {"short_factor", {1.0, 1.0}}, {"long_factor", {1.0, 1e300}}}}},
          "long_factor");
  refused({{"rope_parameters", {{"rope_type", "longrope"}, {"original_max_position_embeddings", 1}}}},
          "original_max_position_embeddings");
}

// Qwen/Qwen3-0.6B's config.json as published (transformers 4.51 era: the
// old rope_theta / rope_scaling: null keys, a null sliding window, tied
// embeddings, head_dim 128 at hidden 1024).
TEST(LlamaSpec, ReadsQwen3_0_6BConfigAsPublished) {
  const nlohmann::json c = nlohmann::json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024,
    "initializer_range": 0.02, "intermediate_size": 3072, "max_position_embeddings": 40960,
    "max_window_layers": 28, "model_type": "qwen3", "num_attention_heads": 16, "num_hidden_layers": 28,
    "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
    "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})");
  const ModelSpec s = ModelSpec::from_config(c, "Qwen3-0.6B/config.json");
  EXPECT_EQ(s.arch, Arch::kQwen3);
  EXPECT_TRUE(s.qk_norm);
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_FALSE(s.proj_bias);
  EXPECT_TRUE(s.tie_word_embeddings);
  EXPECT_EQ(s.head_dim, 128);
  EXPECT_EQ(s.attention_config().q_width(), 2048);  // 16 heads of 128: wider than the model
  EXPECT_EQ(s.kv_heads, 8);
  EXPECT_EQ(s.sliding_window, 0);
  EXPECT_EQ(s.rope.scaling, RopeScaling::kNone);
  EXPECT_EQ(s.rope.theta, 1e6);
  EXPECT_FLOAT_EQ(s.norm_eps, 1e-6f);
}

// SmolLM3's NoPE layers: without no_rope_layers every fourth layer (as
// SmolLM3Config fills the list in, or every no_rope_layer_interval-th);
// a list of the wrong length or with other values than 0 / 1 is an error
// naming the key.
TEST(LlamaSpec, SmolLM3NoRopeLayers) {
  nlohmann::json c = ModelSpec::tiny(Arch::kSmolLM3).to_config();
  c["num_hidden_layers"] = 8;
  c.erase("no_rope_layers");
  ModelSpec s = ModelSpec::from_config(c, "c.json");
  for (int64_t l = 0; l < 8; ++l) EXPECT_EQ(s.rotates(l), l != 3 && l != 7) << l;
  c["no_rope_layer_interval"] = 3;
  s = ModelSpec::from_config(c, "c.json");
  for (int64_t l = 0; l < 8; ++l) EXPECT_EQ(s.rotates(l), l != 2 && l != 5) << l;
  c["no_rope_layers"] = {1, 0, 1};
  testing::expect_error([&] { ModelSpec::from_config(c, "c.json"); }, {"c.json", "'no_rope_layers' must list 8"});
  c["no_rope_layers"] = {1, 1, 1, 2, 1, 1, 1, 0};
  testing::expect_error([&] { ModelSpec::from_config(c, "c.json"); }, {"c.json", "no_rope_layers[3]"});
}

// Gemma 3 270M's config.json (transformers 4.5x era: rope_theta,
// rope_local_base_freq and a null rope_scaling instead of nested
// rope_parameters; five sliding-window layers to each full one).
TEST(LlamaSpec, ReadsGemma3_270MConfig) {
  nlohmann::json c = nlohmann::json::parse(R"({
    "_sliding_window_pattern": 6, "architectures": ["Gemma3ForCausalLM"], "attention_bias": false,
    "attention_dropout": 0.0, "attn_logit_softcapping": null, "bos_token_id": 2, "eos_token_id": 1,
    "final_logit_softcapping": null, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 640,
    "initializer_range": 0.02, "intermediate_size": 2048, "max_position_embeddings": 32768,
    "model_type": "gemma3_text", "num_attention_heads": 4, "num_hidden_layers": 18, "num_key_value_heads": 1,
    "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0,
    "rope_scaling": null, "rope_theta": 1000000.0, "sliding_window": 512, "torch_dtype": "bfloat16",
    "use_bidirectional_attention": false, "use_cache": true, "vocab_size": 262144})");
  nlohmann::json types = nlohmann::json::array();
  for (int l = 0; l < 18; ++l) types.push_back((l + 1) % 6 ? "sliding_attention" : "full_attention");
  c["layer_types"] = types;
  const ModelSpec s = ModelSpec::from_config(c, "gemma-3-270m/config.json");
  EXPECT_EQ(s.arch, Arch::kGemma3);
  EXPECT_EQ(s.head_dim, 256);
  EXPECT_EQ(s.kv_heads, 1);
  EXPECT_TRUE(s.tie_word_embeddings);
  EXPECT_TRUE(s.qk_norm && s.post_norms && s.norm_plus_one);
  EXPECT_EQ(s.activation, ops::Activation::kGeluTanh);
  EXPECT_FLOAT_EQ(s.embed_scale, std::sqrt(640.0f));
  EXPECT_FLOAT_EQ(s.attention_config().scale, 1.0f / 16.0f);
  EXPECT_EQ(s.rope.theta, 1e6);
  EXPECT_EQ(s.rope_local.theta, 1e4);
  EXPECT_EQ(s.sliding_window, 512);
  for (int64_t l = 0; l < 18; ++l) EXPECT_EQ(s.is_local(l), (l + 1) % 6 != 0) << l;
  // Gemma 3 4B's linear scaling (factor 8) in rope_scaling applies to the full layers only.
  nlohmann::json scaled = c;
  scaled["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};
  const ModelSpec s4 = ModelSpec::from_config(scaled, "c.json");
  EXPECT_EQ(s4.rope.scaling, RopeScaling::kLinear);
  EXPECT_EQ(s4.rope.factor, 8.0);
  EXPECT_EQ(s4.rope_local.scaling, RopeScaling::kNone);
  // Gemma 2's soft-capping and EmbeddingGemma's bidirectional attention are refused by key.
  for (const char* key : {"final_logit_softcapping", "attn_logit_softcapping"}) {
    nlohmann::json capped = c;
    capped[key] = 30.0;
    testing::expect_error([&] { ModelSpec::from_config(capped, "c.json"); }, {"c.json", key});
  }
  // The sliding-window layers' RoPE rotates whole heads too (read, not ignored).
  nlohmann::json partial = c;
  partial["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}}},
                                {"sliding_attention", {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}}}};
  testing::expect_error([&] { ModelSpec::from_config(partial, "c.json"); },
                        {"c.json", "partial_rotary_factor: 0.5", "sliding-window"});
  c["use_bidirectional_attention"] = true;
  testing::expect_error([&] { ModelSpec::from_config(c, "c.json"); }, {"c.json", "use_bidirectional_attention"});
}

// microsoft/Phi-3-mini-4k-instruct's config.json as published (fused
// projections; head dim 96; a 2047-token sliding window; no RoPE scaling).
TEST(LlamaSpec, ReadsPhi3Mini4kConfigAsPublished) {
  const nlohmann::json c = nlohmann::json::parse(R"({
    "architectures": ["Phi3ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "embd_pdrop": 0.0,
    "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072, "initializer_range": 0.02,
    "intermediate_size": 8192, "max_position_embeddings": 4096, "model_type": "phi3", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 32, "original_max_position_embeddings": 4096,
    "pad_token_id": 32000, "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0,
    "sliding_window": 2047, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.2", "use_cache": true, "attention_bias": false, "vocab_size": 32064})");
  const ModelSpec s = ModelSpec::from_config(c, "Phi-3-mini-4k-instruct/config.json");
  EXPECT_EQ(s.arch, Arch::kPhi3);
  EXPECT_TRUE(s.fused_projections);
  EXPECT_EQ(s.head_dim, 96);
  EXPECT_EQ(s.rotary_dim, 96);
  EXPECT_EQ(s.rope.scaling, RopeScaling::kNone);
  EXPECT_EQ(s.sliding_window, 2047);
  EXPECT_EQ(s.pad_token_id, 32000);
  EXPECT_FALSE(s.tie_word_embeddings);
  EXPECT_FALSE(s.qkv_bias || s.proj_bias || s.mlp_bias);
  EXPECT_FLOAT_EQ(s.norm_eps, 1e-5f);
}

// Phi-4-mini-instruct's keys and shape (its 48 short / long factors are
// stand-ins here): 96 of each head's 128 columns rotate, LongRoPE from
// 4096 positions to 131072, so cos and sin scale by √(1 + ln 32 / ln 4096);
// the "su" name of older Phi-3 checkpoints; factor lists of the wrong
// length and partial rotation outside Phi-3 are errors naming the key.
TEST(LlamaSpec, ReadsPhi4MiniPartialRotaryLongRope) {
  nlohmann::json c = nlohmann::json::parse(R"({
    "architectures": ["Phi3ForCausalLM"], "attention_bias": false, "bos_token_id": 199999, "eos_token_id": 199999,
    "hidden_act": "silu", "hidden_size": 3072, "intermediate_size": 8192, "lm_head_bias": false,
    "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "phi3", "num_attention_heads": 24,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "original_max_position_embeddings": 4096,
    "pad_token_id": 199999, "partial_rotary_factor": 0.75, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
    "sliding_window": 262144, "tie_word_embeddings": true, "vocab_size": 200064})");
  nlohmann::json shorts = nlohmann::json::array(), longs = nlohmann::json::array();
  for (int i = 0; i < 48; ++i) shorts.push_back(1.0 + 0.01 * i), longs.push_back(1.0 + 0.5 * i);
  c["rope_scaling"] = {{"type", "longrope"}, {"short_factor", shorts}, {"long_factor", longs}};
  const ModelSpec s = ModelSpec::from_config(c, "Phi-4-mini-instruct/config.json");
  EXPECT_EQ(s.head_dim, 128);
  EXPECT_EQ(s.rotary_dim, 96);
  EXPECT_EQ(s.kv_heads, 8);
  EXPECT_TRUE(s.tie_word_embeddings);
  EXPECT_EQ(s.rope.scaling, RopeScaling::kLongRope);
  EXPECT_EQ(s.rope.original_max_positions, 4096);
  EXPECT_FLOAT_EQ(s.rope.attention_factor, float(std::sqrt(1.0 + std::log(32.0) / std::log(4096.0))));
  // 48 frequencies; short factors up to 4096 positions, long ones past it.
  std::vector<float> inv;
  s.rope_inv_freq(4095, false, inv);
  ASSERT_EQ(inv.size(), 48u);
  EXPECT_FLOAT_EQ(inv[1], 1.0f / (1.01f * std::pow(10000.0f, 2.0f / 96.0f)));
  s.rope_inv_freq(4096, false, inv);
  EXPECT_FLOAT_EQ(inv[1], 1.0f / (1.5f * std::pow(10000.0f, 2.0f / 96.0f)));

  c["rope_scaling"]["type"] = "su";  // older Phi-3 checkpoints
  EXPECT_EQ(ModelSpec::from_config(c, "c.json").rope.scaling, RopeScaling::kLongRope);
  c["rope_scaling"]["long_factor"].erase(0);
  testing::expect_error([&] { ModelSpec::from_config(c, "c.json"); }, {"c.json", "long_factor", "47 factors"});
  c["rope_scaling"] = nullptr;
  c["model_type"] = "llama";
  testing::expect_error([&] { ModelSpec::from_config(c, "c.json"); }, {"c.json", "partial_rotary_factor: 0.75"});
}

// Which layers attend over the sliding window: every layer (Mistral,
// Phi-3); Qwen2/Qwen3 with use_sliding_window from max_window_layers on and
// SmolLM3 on its NoPE layers (their transformers configs' rule), or
// layer_types where config.json lists them; none without use_sliding_window.
TEST(LlamaSpec, SlidingWindowLayersFollowTheConfig) {
  nlohmann::json c = nlohmann::json::parse(R"({"model_type": "mistral", "hidden_size": 32, "intermediate_size": 64,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128,
    "sliding_window": 6, "max_position_embeddings": 64})");
  auto windows = [](const ModelSpec& s) {
    std::vector<int64_t> w;
    for (int64_t l = 0; l < s.layers; ++l) w.push_back(s.attention_config(l).window);
    return w;
  };
  EXPECT_EQ(windows(ModelSpec::from_config(c, "c.json")), (std::vector<int64_t>{6, 6, 6, 6}));
  c["model_type"] = "qwen2";
  EXPECT_EQ(windows(ModelSpec::from_config(c, "c.json")), (std::vector<int64_t>{0, 0, 0, 0}));
  c["use_sliding_window"] = true;
  c["max_window_layers"] = 2;
  EXPECT_EQ(windows(ModelSpec::from_config(c, "c.json")), (std::vector<int64_t>{0, 0, 6, 6}));
  c["max_window_layers"] = -1;
  testing::expect_error([&] { ModelSpec::from_config(c, "c.json"); }, {"c.json", "max_window_layers", "-1"});
  c["max_window_layers"] = 2;
  c["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention", "full_attention"};
  EXPECT_EQ(windows(ModelSpec::from_config(c, "c.json")), (std::vector<int64_t>{6, 0, 6, 0}));
  c["layer_types"] = {"sliding_attention"};
  testing::expect_error([&] { ModelSpec::from_config(c, "c.json"); }, {"c.json", "layer_types", "4 layers"});
  c.erase("layer_types");
  c["model_type"] = "smollm3";
  c["no_rope_layers"] = {1, 0, 1, 0};
  EXPECT_EQ(windows(ModelSpec::from_config(c, "c.json")), (std::vector<int64_t>{0, 6, 0, 6}));
}

// A bf16 checkpoint in several shards with an index, as LLaMA-family
// models ship: loads (converted to f32 at load: CPU compute is f32) to
// exactly the bf16 values, and runs.
TEST(LlamaLoad, ShardedBf16Checkpoint) {
  namespace fs = std::filesystem;
  const std::string src = std::string(PTUNE_FIXTURES) + "/llama/llama";
  const fs::path dir = fs::temp_directory_path() / ("ptune_llama_bf16_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(src + "/config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  auto f32 = Transformer::load(src);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : f32->weights().to_checkpoint()) tensors.emplace_back(name, t.to(DType::kBF16));
  const std::string index = io::write_sharded(dir.string(), tensors, 16 << 10);  // 16 KiB: several shards
  ASSERT_TRUE(index.ends_with(".index.json")) << index;
  const io::CheckpointReader reader = io::CheckpointReader::open(dir.string());
  EXPECT_EQ(reader.dominant_dtype(), DType::kBF16);
  auto bf16 = Transformer::load(dir.string());
  const auto& a = f32->weights().units(), &b = bf16->weights().units();
  ASSERT_EQ(a.size(), b.size());
  for (size_t u = 0; u < a.size(); ++u) {
    const Tensor rounded = a[u].flat.to(DType::kBF16).to(DType::kF32);
    ASSERT_EQ(rounded.numel(), b[u].flat.numel());
    for (int64_t i = 0; i < rounded.numel(); ++i)
      ASSERT_EQ(rounded.data<float>()[i], b[u].flat.data<float>()[i]) << a[u].name << " " << i;
  }
  fs::remove_all(dir);
}

// Sampling: frequencies follow softmax(logits / temperature) restricted to
// top-k / top-p; top_k = 1 is greedy.
TEST(Sampling, FollowsTemperatureTopKAndTopP) {
  const float logits[4] = {2.0f, 1.0f, 0.5f, -1.0f};
  auto frequencies = [&](GenerationOptions o) {
    o.sample = true;
    Rng rng(42);
    std::vector<double> f(4, 0.0);
    const int n = 40000;
    for (int i = 0; i < n; ++i) f[size_t(pick_token(logits, 4, o, rng))] += 1.0 / n;
    return f;
  };
  GenerationOptions o;
  o.temperature = 2.0f;
  std::vector<double> want(4);
  double z = 0;
  for (int i = 0; i < 4; ++i) z += want[size_t(i)] = std::exp(logits[i] / 2.0);
  std::vector<double> got = frequencies(o);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(got[size_t(i)], want[size_t(i)] / z, 0.01) << i;
  o.top_k = 2;  // renormalised over the two largest
  got = frequencies(o);
  EXPECT_NEAR(got[0], want[0] / (want[0] + want[1]), 0.01);
  EXPECT_EQ(got[2] + got[3], 0.0);
  o.top_k = 0;
  o.top_p = 0.5f;  // p(0) = 0.43 < 0.5: tokens 0 and 1
  got = frequencies(o);
  EXPECT_NEAR(got[0], want[0] / (want[0] + want[1]), 0.01);
  EXPECT_EQ(got[2] + got[3], 0.0);
  o.top_p = 1.0f;
  o.top_k = 1;
  got = frequencies(o);
  EXPECT_NEAR(got[0], 1.0, 1e-9);
  GenerationOptions greedy;
  Rng rng(0);
  EXPECT_EQ(pick_token(logits, 4, greedy, rng), 0);
}

}  // namespace
}  // namespace ptune::model
