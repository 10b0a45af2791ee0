// The engine against transformers + peft: hidden states, logits, pooler,
// loss and gradients (to input embeddings and to the KV prefix) of tiny
// random GPT-2, BERT and RoBERTa checkpoints. Fixtures come from
// tests/golden/gen_model_fixtures.py (see tests/golden/README.md).
#include <gtest/gtest.h>

#include "expect_close.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "framework/core/arena.h"
#include "framework/core/rng.h"
#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"
#include "framework/model/heads.h"
#include "framework/model/transformer.h"
#include "framework/ops/cross_entropy.h"
#include "framework/ops/embedding.h"
#include "model/kv_prefix_util.h"

namespace ptune::model {
namespace {

// f32 reaches ~3e-6 here.
void expect_close(const char* what, const Tensor& got, const Tensor& want, double tol = 2e-5) {
  ptune::testing::expect_close(what, got, want, tol);
}

// XLM-R and CamemBERT checkpoints are RoBERTa's network and weight names
// under another model_type (transformers' classes are copies of RoBERTa's):
// the roberta fixture, its config.json's model_type replaced, in a folder
// of its own. Returns that folder.
std::string roberta_as(const std::string& model_type) {
  namespace fs = std::filesystem;
  const fs::path from = fs::path(PTUNE_FIXTURES) / "model" / "roberta";
  const fs::path to = fs::temp_directory_path() / fmt::format("ptune_golden_{}_{}", model_type, ::getpid());
  fs::create_directories(to);
  fs::copy_file(from / "model.safetensors", to / "model.safetensors", fs::copy_options::overwrite_existing);
  nlohmann::json config = io::read_json_file((from / "config.json").string());
  config["model_type"] = model_type;
  std::ofstream(to / "config.json") << config.dump();
  return to.string();
}

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string fixture = std::string(PTUNE_FIXTURES) + "/model/" + GetParam();
    const bool alias = GetParam() == "xlm-roberta" || GetParam() == "camembert";
    dir = alias ? roberta_as(GetParam()) : fixture;
    if (alias) copy_ = dir;
    model = Transformer::load(dir);
    EXPECT_EQ(model->spec().model_type, GetParam());
    const std::string golden_dir = alias ? std::string(PTUNE_FIXTURES) + "/model/roberta" : fixture;
    golden = std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(golden_dir + "/golden.safetensors"));
    ids = golden->load("input_ids", DType::kI32);
    mask = golden->load("attention_mask", DType::kI32);
    if (golden->contains("token_type_ids")) types = golden->load("token_type_ids", DType::kI32);
    B = ids.size(0);
    T = ids.size(1);
    C = model->spec().hidden;
  }

  void TearDown() override {
    if (!copy_.empty()) std::filesystem::remove_all(copy_);
  }

  Tensor f32(const char* name) const { return golden->load(name, DType::kF32); }

  ModelInputs inputs(const Tensor& embeds, const Tensor& positions, const KvPrefix* prefix = nullptr) const {
    ModelInputs in;
    in.input_embeds = embeds;
    in.position_ids = positions;
    in.token_type_ids = types;
    in.attention_mask = mask;
    in.prefix = prefix;
    return in;
  }

  // hidden → the loss Σ hidden·w_hidden (+ Σ logits·w_logits, + Σ pooled·w_pooler)
  // of the fixtures; returns dhidden.
  Tensor probe_backward(LmHead* head, Pooler* pooler, Arena& arena) {
    Tensor dhidden = arena.zeros({B, T, C});
    dhidden.copy_from(f32("w_hidden"));
    if (head) head->backward(dhidden, f32("w_logits"), arena);
    if (pooler) {
      Tensor dfirst = arena.zeros({B, C});
      pooler->backward(dfirst, f32("w_pooler"), arena);
      ops::scatter_add_rows(dhidden.view({B * T, C}), dfirst, first_rows());
    }
    return dhidden;
  }

  // The flat rows b·T of each sequence's first token, (B) i32: what the pooler reads.
  Tensor first_rows() const {
    Tensor rows = Tensor::empty({B}, DType::kI32);
    for (int64_t b = 0; b < B; ++b) rows.data<int32_t>()[b] = int32_t(b * T);
    return rows;
  }

  std::string dir, copy_;  // copy_: roberta_as()'s folder, removed after the test
  std::unique_ptr<Transformer> model;
  std::unique_ptr<io::SafetensorsFile> golden;
  Tensor ids, mask, types;
  int64_t B = 0, T = 0, C = 0;
};

TEST_P(Golden, PositionIdsMatchTransformers) {
  Tensor pos = Tensor::empty({B, T}, DType::kI32);
  for (int64_t prefix : {int64_t(0), int64_t(3)}) {
    model->default_position_ids(pos, ids, prefix);
    const Tensor want = golden->load(prefix ? "prefix_position_ids" : "position_ids", DType::kI32);
    for (int64_t i = 0; i < B * T; ++i)
      EXPECT_EQ(pos.data<int32_t>()[i], want.data<int32_t>()[i]) << "prefix " << prefix << " token " << i;
  }
}

TEST_P(Golden, ForwardAndInputGradients) {
  Arena arena;
  Tensor embeds = arena.alloc({B, T, C});
  model->embed_tokens(embeds, ids);
  Tensor positions = golden->load("position_ids", DType::kI32);
  Tensor hidden = model->forward(inputs(embeds, positions), arena);
  expect_close("hidden_states", hidden, f32("hidden_states"));

  LmHead head(*model);
  Tensor logits = arena.alloc({B, T, model->spec().vocab_size});
  head.forward(logits, hidden, arena);
  expect_close("logits", logits, f32("logits"));

  std::unique_ptr<Pooler> pooler;
  if (golden->contains("pooler_output")) {
    pooler = std::make_unique<Pooler>(*model);
    Tensor pooled = arena.alloc({B, C}), first = arena.alloc({B, C});
    ops::embedding_forward(first, first_rows(), hidden.view({B * T, C}));
    pooler->forward(pooled, first, arena);
    expect_close("pooler_output", pooled, f32("pooler_output"));
  }

  Tensor dhidden = probe_backward(&head, pooler.get(), arena);
  ModelGrads grads;
  grads.input_embeds = arena.zeros({B, T, C});
  model->backward(dhidden, grads, arena);
  expect_close("grad_inputs_embeds", grads.input_embeds, f32("grad_inputs_embeds"));
}

TEST_P(Golden, CrossEntropyLossAndGradient) {
  Arena arena;
  const int64_t V = model->spec().vocab_size;
  Tensor embeds = arena.alloc({B, T, C});
  model->embed_tokens(embeds, ids);
  Tensor hidden = model->forward(inputs(embeds, golden->load("position_ids", DType::kI32)), arena);
  LmHead head(*model);
  Tensor logits = arena.alloc({B, T, V});
  head.forward(logits, hidden, arena);

  // Causal LMs predict token t+1 at position t: shift the labels left.
  Tensor labels = golden->load("labels", DType::kI32);
  Tensor targets = arena.alloc({B, T}, DType::kI32);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const bool causal = model->spec().is_decoder();
      const int64_t src = causal ? t + 1 : t;
      targets.data<int32_t>()[b * T + t] = src < T ? labels.data<int32_t>()[b * T + src] : ops::kIgnoreIndex;
    }
  Tensor losses = arena.alloc({B * T}), lse = arena.alloc({B * T});
  const int64_t count = ops::cross_entropy_forward(losses, lse, logits, targets);
  double loss = 0;
  for (int64_t i = 0; i < B * T; ++i) loss += losses.data<float>()[i];
  loss /= double(count);
  EXPECT_NEAR(loss, f32("loss").data<float>()[0], 1e-5);

  Tensor dlogits = arena.zeros({B, T, V});
  ops::cross_entropy_backward(dlogits, logits, lse, targets, 1.0f / float(count));
  Tensor dhidden = arena.zeros({B, T, C});
  head.backward(dhidden, dlogits, arena);
  ModelGrads grads;
  grads.input_embeds = arena.zeros({B, T, C});
  model->backward(dhidden, grads, arena);
  expect_close("grad_loss_inputs_embeds", grads.input_embeds, f32("grad_loss_inputs_embeds"));
}

// peft's prefix embedding row holds, for layer l, the keys at columns
// [2l·C, (2l+1)·C) and the values at [(2l+1)·C, (2l+2)·C).
TEST_P(Golden, KvPrefixForwardAndGradients) {
  Arena arena;
  const int64_t L = model->spec().layers;
  const Tensor table = f32("prefix_embedding");  // (P, 2·L·C)
  const int64_t P = table.size(0);
  KvPrefix prefix, dprefix;
  for (int64_t l = 0; l < L; ++l) {
    for (int kv = 0; kv < 2; ++kv) {
      Tensor t = Tensor::empty({P, C}, DType::kF32);
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < C; ++c)
          t.data<float>()[p * C + c] = table.data<float>()[p * 2 * L * C + (2 * l + kv) * C + c];
      (kv ? prefix.values : prefix.keys).push_back(t);
      (kv ? dprefix.values : dprefix.keys).push_back(Tensor::zeros({P, C}, DType::kF32));
    }
  }
  EXPECT_EQ(prefix.length(), P);

  Tensor embeds = arena.alloc({B, T, C});
  model->embed_tokens(embeds, ids);
  Tensor positions = arena.alloc({B, T}, DType::kI32);
  model->default_position_ids(positions, ids, P);
  Tensor hidden = model->forward(inputs(embeds, positions, &prefix), arena);
  expect_close("prefix_hidden_states", hidden, f32("prefix_hidden_states"));

  std::unique_ptr<LmHead> head;
  if (golden->contains("prefix_logits")) {
    head = std::make_unique<LmHead>(*model);
    Tensor logits = arena.alloc({B, T, model->spec().vocab_size});
    head->forward(logits, hidden, arena);
    expect_close("prefix_logits", logits, f32("prefix_logits"));
  }

  Tensor dhidden = probe_backward(head.get(), nullptr, arena);
  ModelGrads grads;
  grads.input_embeds = arena.zeros({B, T, C});
  grads.prefix = &dprefix;
  model->backward(dhidden, grads, arena);
  expect_close("prefix_grad_inputs_embeds", grads.input_embeds, f32("prefix_grad_inputs_embeds"));

  Tensor dtable = Tensor::empty(table.shape(), DType::kF32);
  for (int64_t l = 0; l < L; ++l)
    for (int kv = 0; kv < 2; ++kv) {
      const Tensor& d = (kv ? dprefix.values : dprefix.keys)[size_t(l)];
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < C; ++c)
          dtable.data<float>()[p * 2 * L * C + (2 * l + kv) * C + c] = d.data<float>()[p * C + c];
    }
  expect_close("grad_prefix_embedding", dtable, f32("grad_prefix_embedding"));
}

// Without input gradients, backward stops at the lowest prefix layer and
// still gives the same prefix gradients.
TEST_P(Golden, BackwardStopsAtLowestPromptLayer) {
  const int64_t L = model->spec().layers, P = 2;
  KvPrefix prefix = testing::random_prefix(L, P, C), full = testing::zero_prefix_grads(L, P, C);
  KvPrefix top_only = testing::zero_prefix_grads(L, P, C, [&](int64_t l) { return l == L - 1; });
  Arena arena;
  Tensor embeds = arena.alloc({B, T, C}), positions = arena.alloc({B, T}, DType::kI32);
  model->embed_tokens(embeds, ids);
  model->default_position_ids(positions, ids, P);
  auto run = [&](KvPrefix& d) {
    Tensor hidden = model->forward(inputs(embeds, positions, &prefix), arena);
    ModelGrads grads;
    grads.prefix = &d;
    model->backward(f32("w_hidden"), grads, arena);
  };
  run(full);
  run(top_only);
  expect_close("top layer keys", top_only.keys[size_t(L - 1)], full.keys[size_t(L - 1)], 1e-6);
  expect_close("top layer values", top_only.values[size_t(L - 1)], full.values[size_t(L - 1)], 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Archs, Golden, ::testing::Values("gpt2", "bert", "roberta", "xlm-roberta", "camembert"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace ptune::model
