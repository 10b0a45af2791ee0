// The whole model on a GPU against the transformers + peft golden fixtures
// (the same fixtures tests/model checks the CPU against): GPT-2, BERT,
// RoBERTa and LLaMA, each with a KV prefix in every layer — hidden states,
// logits, and the gradients to the input embeddings and to the prefix —
// with the frozen weights and activations in f32 and in bf16 (whose GEMMs
// are timed and tuned on first use: a tuned GEMM must also leave the
// steady-state step allocation-free), and in bf16 in deterministic mode
// (PTUNE_DETERMINISTIC, ops/deterministic.h: the heuristic's GEMMs, the
// attention backward in one launch without atomics, in the model's own
// sequence of calls), and with activation checkpointing (the backward's
// reruns of each block give the same gradients); and a task head's
// selected rows against the full run on the GPU.
//
// Tolerances (relative L2 error, cuda_test_util.h): f32 1e-4 — the GPU sums
// in another order than torch and than the CPU (no TF32: linear_cuda.cu);
// bf16 5e-2 — weights, activations and stored gradients are rounded to 8
// mantissa bits (2⁻⁸ ≈ 3.9e-3 a rounding) at each of the ~15 stored
// tensors a 2-layer block stack passes through; the errors add up
// mostly incoherently, to ~1–2e-2 measured on such stacks, bounded by 5e-2.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

#include "cuda/cuda_test_util.h"
#include "framework/core/arena.h"
#include "framework/io/safetensors.h"
#include "framework/model/heads.h"
#include "framework/model/transformer.h"
#include "framework/ops/deterministic.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/embedding.h"

namespace ptune::model {
namespace {

using namespace cuda_test;  // NOLINT: the shared helpers

struct Case {
  std::string fixture;  // under tests/golden/fixtures
  DType dtype;
  bool deterministic = false;  // PTUNE_DETERMINISTIC for the test
  bool recompute = false;      // activation checkpointing: backward reruns each block
};

std::string name_of(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.fixture.substr(info.param.fixture.rfind('/') + 1);
  return n + (info.param.dtype == DType::kF32 ? "_f32" : "_bf16") +
         (info.param.deterministic ? "_deterministic" : "") + (info.param.recompute ? "_recompute" : "");
}

class CudaModel : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
    dir = std::string(PTUNE_FIXTURES) + "/" + GetParam().fixture;
    model = Transformer::load(dir, {{}, kGpu, GetParam().dtype});  // unit by unit, straight to the GPU
    model->set_recompute(GetParam().recompute);
    golden = std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(dir + "/golden.safetensors"));
    mode = std::make_unique<ops::ScopedDeterministic>(GetParam().deterministic);
  }
  float tol() const { return GetParam().dtype == DType::kF32 ? 1e-4f : 5e-2f; }
  Tensor f32(const char* name) const { return golden->load(name, DType::kF32); }
  // A host f32 fixture on the GPU in the model's dtype.
  Tensor on_gpu(const Tensor& host) const { return to_gpu(host, model->dtype()); }

  std::string dir;
  std::unique_ptr<Transformer> model;
  std::unique_ptr<io::SafetensorsFile> golden;
  std::unique_ptr<ops::ScopedDeterministic> mode;
};

TEST_P(CudaModel, KvPrefixForwardAndGradientsMatchTransformers) {
  const ModelSpec& spec = model->spec();
  const DType act = model->dtype();
  Arena arena(kGpu);
  const Tensor ids = golden->load("input_ids", DType::kI32), mask = golden->load("attention_mask", DType::kI32);
  const int64_t B = ids.size(0), T = ids.size(1), C = spec.hidden, L = spec.layers;
  const int64_t W = spec.kv_heads * spec.head_dim;
  // peft's prefix row: layer l's keys at columns [2l·W, (2l+1)·W), values next.
  const Tensor table = to_gpu(f32("prefix_embedding"), DType::kF32);  // (P, 2·L·W)
  const int64_t P = table.size(0);
  KvPrefix prefix, dprefix;
  for (int64_t l = 0; l < L; ++l)
    for (int kv = 0; kv < 2; ++kv) {
      Tensor t = arena.alloc({P, W}, act);
      ops::copy_columns(t, 0, table, (2 * l + kv) * W, W, false);
      (kv ? prefix.values : prefix.keys).push_back(t);
      (kv ? dprefix.values : dprefix.keys).push_back(arena.zeros({P, W}));
    }

  ModelInputs in;
  in.input_embeds = arena.alloc({B, T, C}, act);
  model->embed_tokens(in.input_embeds, arena.copy_of(ids));
  in.position_ids = golden->load("prefix_position_ids", DType::kI32);  // host: the model uploads it
  in.attention_mask = mask;
  if (golden->contains("token_type_ids")) in.token_type_ids = golden->load("token_type_ids", DType::kI32);
  in.prefix = &prefix;
  const Tensor hidden = model->forward(in, arena);
  EXPECT_CLOSE(hidden, f32("prefix_hidden_states"), tol());

  // The fixtures' probe loss Σ hidden·w_hidden (+ Σ logits·w_logits where
  // the fixture has prefix logits: the decoders).
  Tensor dhidden = on_gpu(f32("w_hidden"));
  if (golden->contains("prefix_logits")) {
    LmHead head(*model);
    Tensor logits = arena.alloc({B, T, spec.vocab_size}, act);
    head.forward(logits, hidden, arena);
    EXPECT_CLOSE(logits, f32("prefix_logits"), tol());
    head.backward(dhidden, on_gpu(f32("w_logits")), arena);
  }
  ModelGrads grads;
  grads.input_embeds = arena.zeros({B, T, C}, act);
  grads.prefix = &dprefix;
  model->backward(dhidden, grads, arena);
  EXPECT_CLOSE(grads.input_embeds, f32("prefix_grad_inputs_embeds"), tol());

  Tensor dtable = arena.zeros(table.shape());
  for (int64_t l = 0; l < L; ++l)
    for (int kv = 0; kv < 2; ++kv)
      ops::copy_columns(dtable, (2 * l + kv) * W, (kv ? dprefix.values : dprefix.keys)[size_t(l)], 0, W, true);
  EXPECT_CLOSE(dtable, f32("grad_prefix_embedding"), tol());
}

TEST_P(CudaModel, ForwardAndInputGradientsMatchTransformers) {
  const DType act = model->dtype();
  Arena arena(kGpu);
  const Tensor ids = golden->load("input_ids", DType::kI32);
  const int64_t B = ids.size(0), T = ids.size(1), C = model->spec().hidden;
  ModelInputs in;
  in.input_embeds = arena.alloc({B, T, C}, act);
  model->embed_tokens(in.input_embeds, arena.copy_of(ids));
  in.position_ids = golden->load("position_ids", DType::kI32);
  in.attention_mask = golden->load("attention_mask", DType::kI32);
  if (golden->contains("token_type_ids")) in.token_type_ids = golden->load("token_type_ids", DType::kI32);
  const Tensor hidden = model->forward(in, arena);
  EXPECT_CLOSE(hidden, f32("hidden_states"), tol());

  // Probe Σ hidden·w_hidden + Σ logits·w_logits (+ Σ pooled·w_pooler).
  LmHead head(*model);
  Tensor logits = arena.alloc({B, T, model->spec().vocab_size}, act);
  head.forward(logits, hidden, arena);
  EXPECT_CLOSE(logits, f32("logits"), tol());
  Tensor dhidden = on_gpu(f32("w_hidden"));
  head.backward(dhidden, on_gpu(f32("w_logits")), arena);
  if (golden->contains("pooler_output")) {
    Pooler pooler(*model);
    // It reads each sequence's first token, the flat rows b·T.
    Tensor first_rows = Tensor::empty({B}, DType::kI32);
    for (int64_t b = 0; b < B; ++b) first_rows.data<int32_t>()[b] = int32_t(b * T);
    first_rows = arena.copy_of(first_rows);
    Tensor pooled = arena.alloc({B, C}, act), first = arena.alloc({B, C}, act), dfirst = arena.zeros({B, C}, act);
    ops::embedding_forward(first, first_rows, hidden.view({B * T, C}));
    pooler.forward(pooled, first, arena);
    EXPECT_CLOSE(pooled, f32("pooler_output"), tol());
    pooler.backward(dfirst, on_gpu(f32("w_pooler")), arena);
    ops::scatter_add_rows(dhidden.view({B * T, C}), dfirst, first_rows);
  }
  ModelGrads grads;
  grads.input_embeds = arena.zeros({B, T, C}, act);
  model->backward(dhidden, grads, arena);
  EXPECT_CLOSE(grads.input_embeds, f32("grad_inputs_embeds"), tol());
}

// A task head's rows (ModelInputs::rows): the last block computes only
// them past its attention, on the GPU's gathers and scatters. Their hidden
// states and the gradients of a loss on them — to the inputs and to a KV
// prefix in every layer — are the full run's, within the dtype's tolerance.
TEST_P(CudaModel, SelectedRowsMatchTheFullRun) {
  const ModelSpec& spec = model->spec();
  const DType act = model->dtype();
  const Tensor ids = golden->load("input_ids", DType::kI32), mask = golden->load("attention_mask", DType::kI32);
  const int64_t B = ids.size(0), T = ids.size(1), C = spec.hidden, L = spec.layers, P = 3;
  const int64_t W = spec.kv_heads * spec.head_dim;
  std::vector<int32_t> rows = {int32_t(B * T - 1), 0, int32_t(T - 1)};  // a head's order, not sorted
  const Tensor w = randn({int64_t(rows.size()), C});                    // the loss Σ hidden[rows]·w
  std::vector<Tensor> keys, values;
  for (int64_t l = 0; l < L; ++l) {
    keys.push_back(to_gpu(randn({P, W}), act));
    values.push_back(to_gpu(randn({P, W}), act));
  }
  struct Run {
    Tensor hidden, dinput, dprefix;  // hidden (N, C) of the rows; dprefix every layer's (P, W) keys, values
  };
  auto run = [&](bool select) {
    Arena arena(kGpu);
    KvPrefix prefix{keys, values}, dprefix;
    for (int64_t l = 0; l < L; ++l) {
      dprefix.keys.push_back(arena.zeros({P, W}));
      dprefix.values.push_back(arena.zeros({P, W}));
    }
    ModelInputs in;
    in.input_embeds = arena.alloc({B, T, C}, act);
    model->embed_tokens(in.input_embeds, arena.copy_of(ids));
    in.position_ids = Tensor::empty({B, T}, DType::kI32);
    model->default_position_ids(in.position_ids, ids, P);
    in.attention_mask = mask;
    in.prefix = &prefix;
    if (select) in.rows = Tensor::borrow(rows.data(), {int64_t(rows.size())}, DType::kI32);
    const Tensor hidden = model->forward(in, arena);
    Tensor dhidden = arena.zeros(hidden.shape(), act), picked = arena.alloc({int64_t(rows.size()), C}, act);
    const Tensor row_ids = arena.copy_of(Tensor::borrow(rows.data(), {int64_t(rows.size())}, DType::kI32));
    if (select) {
      picked.copy_from(hidden);
      dhidden.copy_from(to_gpu(w, act));
    } else {
      ops::embedding_forward(picked, row_ids, hidden.view({B * T, C}));
      ops::scatter_add_rows(dhidden.view({B * T, C}), to_gpu(w, act), row_ids);
    }
    ModelGrads grads;
    grads.input_embeds = arena.zeros({B, T, C}, act);
    grads.prefix = &dprefix;
    model->backward(dhidden, grads, arena);
    Tensor dtable = arena.zeros({P, 2 * L * W});
    for (int64_t l = 0; l < L; ++l)
      for (int kv = 0; kv < 2; ++kv)
        ops::copy_columns(dtable, (2 * l + kv) * W, (kv ? dprefix.values : dprefix.keys)[size_t(l)], 0, W, true);
    return Run{to_cpu_f32(picked), to_cpu_f32(grads.input_embeds), to_cpu_f32(dtable)};
  };
  const Run full = run(false), selected = run(true);
  EXPECT_LE(rel_err(selected.hidden, full.hidden), tol());
  EXPECT_LE(rel_err(selected.dinput, full.dinput), tol());
  EXPECT_LE(rel_err(selected.dprefix, full.dprefix), tol());
}

// A second step in the same arena allocates nothing (the arena folded).
TEST_P(CudaModel, SteadyStateStepAllocatesNothing) {
  Arena arena(kGpu);
  const Tensor ids = golden->load("input_ids", DType::kI32);
  const int64_t B = ids.size(0), T = ids.size(1), C = model->spec().hidden;
  size_t after_first = 0;
  for (int step = 0; step < 3; ++step) {
    ModelInputs in;
    in.input_embeds = arena.alloc({B, T, C}, model->dtype());
    model->embed_tokens(in.input_embeds, arena.copy_of(ids));
    in.position_ids = golden->load("position_ids", DType::kI32);
    in.attention_mask = golden->load("attention_mask", DType::kI32);
    const Tensor hidden = model->forward(in, arena);
    ModelGrads grads;
    grads.input_embeds = arena.zeros({B, T, C}, model->dtype());
    model->backward(arena.zeros(hidden.shape(), hidden.dtype()), grads, arena);
    arena.reset();
    if (step == 1) after_first = arena.system_allocations();
  }
  EXPECT_EQ(arena.system_allocations(), after_first);
}

INSTANTIATE_TEST_SUITE_P(Archs, CudaModel,
                         ::testing::Values(Case{"model/gpt2", DType::kF32}, Case{"model/gpt2", DType::kBF16},
                                           Case{"model/bert", DType::kF32}, Case{"model/bert", DType::kBF16},
                                           Case{"model/roberta", DType::kF32}, Case{"model/roberta", DType::kBF16},
                                           Case{"llama/llama", DType::kF32}, Case{"llama/llama", DType::kBF16},
                                           Case{"llama/qwen3", DType::kF32}, Case{"llama/qwen3", DType::kBF16},
                                           Case{"llama/smollm3", DType::kBF16},
                                           Case{"llama/gemma3", DType::kF32}, Case{"llama/gemma3", DType::kBF16},
                                           Case{"llama/phi3_long", DType::kF32},
                                           Case{"llama/phi3_long", DType::kBF16},
                                           Case{"model/gpt2", DType::kBF16, true},
                                           Case{"llama/llama", DType::kBF16, true},
                                           Case{"model/gpt2", DType::kF32, false, true},
                                           Case{"model/bert", DType::kBF16, false, true},
                                           Case{"llama/llama", DType::kBF16, false, true}),
                         name_of);

bool same_bytes_on_host(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.dtype() != b.dtype() || a.numel() != b.numel()) return false;
  const Tensor ha = a.to(Device::cpu()), hb = b.to(Device::cpu());
  return std::memcmp(ha.raw(), hb.raw(), ha.nbytes()) == 0;
}

// Loading straight to the GPU (each unit read, converted and copied on its
// own) gives the bytes of a whole CPU load moved afterwards, whole units
// and a sharded rank's parts alike.
TEST(CudaLoad, PlacedLoadMatchesLoadingThenMoving) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  for (const std::string fixture : {"model/gpt2", "llama/qwen2_cls"})
    for (const DType dtype : {DType::kF32, DType::kBF16})
      for (const ShardLayout layout : {ShardLayout{}, ShardLayout{1, 3}}) {
        SCOPED_TRACE(fmt::format("{} {} part {} of {}", fixture, dtype_name(dtype), layout.rank, layout.ranks));
        const std::string dir = std::string(PTUNE_FIXTURES) + "/" + fixture;
        auto moved = Transformer::load(dir, {layout});
        moved->weights().to(kGpu, dtype);
        const auto placed = Transformer::load(dir, {layout, kGpu, dtype});
        EXPECT_EQ(placed->device(), kGpu);
        EXPECT_EQ(placed->dtype(), dtype);
        for (size_t u = 0; u < placed->weights().units().size(); ++u) {
          const WeightUnit& got = placed->weights().units()[u];
          const WeightUnit& want = moved->weights().units()[u];
          const Tensor& held = got.flat.defined() ? got.flat : got.shard;
          EXPECT_EQ(held.device(), kGpu) << got.name;
          EXPECT_TRUE(same_bytes_on_host(held, want.flat.defined() ? want.flat : want.shard)) << got.name;
        }
      }
}

}  // namespace
}  // namespace ptune::model
