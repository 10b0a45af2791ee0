// `ptune bench`: forward + backward-to-inputs of a frozen transformer with
// a P-Tuning v2 prefix in every layer, random weights. Prints tokens/s and
// effective GFLOP/s: 4·N per token for the N non-embedding weights (2N
// forward, 2N backward to activations — no weight gradients) plus the
// attention products (forward 4·S·C, backward 8·S·C per token and layer,
// S = P + T keys, every key counted as computed). --rows 1 asks the model
// for each sequence's last row only, as a classification head reads it
// (ModelInputs::rows: the last block then skips the other rows past its
// attention); the FLOP count stays the full model's, so GFLOP/s is then
// "as if". --device cuda runs the
// same model on GPU 0 (bf16 by default) and adds the MFU against a dense
// bf16 peak (989 TFLOP/s, H100 SXM).
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "framework/core/arena.h"
#include "framework/core/rng.h"
#include "framework/core/stream.h"
#include "framework/model/transformer.h"
#include "framework/ops/profile.h"

namespace ptune::launch {

namespace {

struct BenchOptions {
  std::string arch = "gpt2";
  int64_t layers = 12, hidden = 768, heads = 12, vocab = 50257;
  int64_t batch = 4, seq = 64, prefix = 20;
  int64_t kv_heads = 0;      // LLaMA family: 0 = heads / 4 (GQA 4:1)
  int64_t head_dim = 0;      // LLaMA family: 0 = hidden / heads (Qwen3 checkpoints use 128 whatever the width)
  int64_t intermediate = 0;  // MLP width; 0 = 4·C (GPT-2, BERT) or 8/3·C rounded to 256 (LLaMA)
  int steps = 10, warmup = 2;
  std::string device = "cpu", dtype = "bf16";  // dtype: of the model on a GPU (the CPU computes in f32)
  double peak_tflops = 989.0;
  bool profile = false;  // per-op time of the step (ops/profile.h), after the timed steps
  bool recompute = false;  // activation checkpointing (Transformer::set_recompute)
  int64_t rows = 0;        // rows per sequence the model returns (its last ones); 0: every row
};

int bench(const BenchOptions& o) {
  const model::ModelSpec shape = model::ModelSpec::tiny(model::arch_from_name(o.arch));
  nlohmann::json config = shape.to_config();
  if (o.arch == "gpt2") {
    config.update({{"n_layer", o.layers}, {"n_embd", o.hidden}, {"n_head", o.heads}, {"n_inner", o.intermediate > 0 ? o.intermediate : 4 * o.hidden},
                   {"vocab_size", o.vocab}, {"n_positions", 1024}});
  } else if (shape.is_llama_family()) {
    // Per-layer lists of the tiny preset give way to the families' defaults
    // for this depth (SmolLM3: every fourth layer NoPE; Gemma 3: five sliding
    // layers to each full one).
    config.erase("no_rope_layers");
    config.erase("layer_types");
    // LLaMA shape: SwiGLU width ≈ 8/3·C rounded to 256, GQA, RoPE.
    const int64_t kv = o.kv_heads > 0 ? o.kv_heads : std::max<int64_t>(1, o.heads / 4);
    config.update({{"num_hidden_layers", o.layers}, {"hidden_size", o.hidden}, {"num_attention_heads", o.heads},
                   {"num_key_value_heads", kv}, {"head_dim", o.head_dim > 0 ? o.head_dim : o.hidden / o.heads},
                   {"intermediate_size", o.intermediate > 0 ? o.intermediate : (8 * o.hidden / 3 + 255) / 256 * 256}, {"vocab_size", o.vocab},
                   {"max_position_embeddings", 2048}});
  } else {
    config.update({{"num_hidden_layers", o.layers}, {"hidden_size", o.hidden}, {"num_attention_heads", o.heads},
                   {"intermediate_size", o.intermediate > 0 ? o.intermediate : 4 * o.hidden}, {"vocab_size", o.vocab},
                   {"max_position_embeddings", 1024}});
  }
  const model::ModelSpec spec = model::ModelSpec::from_config(config, "bench");
  // Options are checked before the random init, which takes a while at these sizes.
  PTUNE_CHECK(o.device == "cpu" || o.device == "cuda", "bench: --device is cpu or cuda, not '{}'", o.device);
  PTUNE_CHECK(o.dtype == "bf16" || o.dtype == "f32", "bench: --dtype is bf16 or f32, not '{}'", o.dtype);
  PTUNE_CHECK(o.rows >= 0 && o.rows <= o.seq, "bench: --rows must be within [0, --seq {}], got {}", o.seq, o.rows);
  PTUNE_CHECK(o.steps >= 1 && o.warmup >= 0, "bench: --steps must be ≥ 1 and --warmup ≥ 0 (got {} and {})", o.steps,
              o.warmup);
  const bool gpu = o.device == "cuda";
  PTUNE_CHECK(!gpu || cuda_device_count() > 0, "bench --device cuda: no GPU visible (or a build without CUDA)");
  Rng rng(0);
  model::Transformer model(spec, model::ModelWeights::random(spec, {}, rng));
  const Device device = gpu ? Device::cuda(0) : Device::cpu();
  if (gpu) model.weights().to(device, o.dtype == "bf16" ? DType::kBF16 : DType::kF32);
  model.set_recompute(o.recompute);
  const DType act = model.dtype();
  const int64_t B = o.batch, T = o.seq, P = o.prefix, C = spec.hidden, L = spec.layers;
  const int64_t KVW = spec.kv_heads * spec.head_dim;  // prefix width (C without GQA)
  // Random host f32 values, on the bench's device in dtype `dt`.
  const auto random = [&](const Shape& shape, DType dt) {
    Tensor t = Tensor::empty(shape, DType::kF32);
    rng.fill_normal(t, 0.0f, 1.0f);
    return (dt == DType::kF32 ? t : t.to(dt)).to(device);
  };

  model::KvPrefix prefix, dprefix;
  for (int64_t l = 0; l < L; ++l) {
    for (auto* kv : {&prefix.keys, &prefix.values}) kv->push_back(random({P, KVW}, act));
    dprefix.keys.push_back(Tensor::zeros({P, KVW}, DType::kF32, device));
    dprefix.values.push_back(Tensor::zeros({P, KVW}, DType::kF32, device));
  }
  Tensor ids = Tensor::empty({B, T}, DType::kI32), positions = Tensor::empty({B, T}, DType::kI32);
  for (int64_t i = 0; i < B * T; ++i) ids.data<int32_t>()[i] = int32_t((i * 7919) % spec.vocab_size);
  model.default_position_ids(positions, ids, P);
  Tensor embeds = Tensor::empty({B, T, C}, act, device);
  model.embed_tokens(embeds, ids.to(device));
  // The last o.rows rows of each sequence, flat b·T + t.
  std::vector<int32_t> rows;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = T - o.rows; t < T; ++t) rows.push_back(int32_t(b * T + t));
  const Tensor dhidden = random(o.rows > 0 ? Shape{B * o.rows, C} : Shape{B, T, C}, act);

  Arena arena(device);
  model::ModelInputs in;
  in.input_embeds = embeds;
  in.position_ids = positions;
  in.prefix = &prefix;
  if (o.rows > 0) in.rows = Tensor::borrow(rows.data(), {int64_t(rows.size())}, DType::kI32);
  model::ModelGrads grads;
  grads.prefix = &dprefix;

  auto step = [&] {
    model.forward(in, arena);
    model.backward(dhidden, grads, arena);
    arena.reset();
  };
  const Stream stream = Stream::default_stream(device);
  for (int i = 0; i < o.warmup; ++i) step();
  stream.synchronize();
  const size_t allocations = arena.system_allocations();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < o.steps; ++i) step();
  stream.synchronize();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const double n = double(model.weights().parameter_count() - model.weights().units()[0].parameter_count());  // minus embeddings
  const double S = double(P + T);
  const double flops_per_token = 4.0 * n + 12.0 * double(L) * S * double(C);
  const double tokens = double(B * T) * o.steps;
  fmt::print("bench {} layers={} hidden={} heads={} batch={} seq={} prefix={} rows={} device={} dtype={} threads={}\n",
             o.arch, L, C, o.heads, B, T, P, o.rows > 0 ? fmt::format("{}/seq", o.rows) : "all", device.str(),
             dtype_name(act), omp_get_max_threads());
  fmt::print("non-embedding parameters {:.1f}M, {:.2f} GFLOP per token\n", n / 1e6, flops_per_token / 1e9);
  fmt::print("step {:.1f} ms, {:.1f} tokens/s, {:.1f} GFLOP/s, arena {:.1f} MiB, steady-state allocations {}\n",
             1e3 * seconds / o.steps, tokens / seconds, tokens * flops_per_token / seconds / 1e9,
             double(arena.peak_bytes()) / (1 << 20), arena.system_allocations() - allocations);
  if (gpu)
    fmt::print("MFU {:.1f}% of {:.0f} TFLOP/s\n", 100.0 * tokens * flops_per_token / seconds / (o.peak_tflops * 1e12),
               o.peak_tflops);
  if (o.profile) {
    // Separate steps: the timing adds a little time of its own.
    ops::OpProfile::enable(true);
    for (int i = 0; i < o.steps; ++i) step();
    const std::vector<ops::OpProfile::Row> rows = ops::OpProfile::collect();
    ops::OpProfile::enable(false);
    double total = 0.0;
    for (const auto& r : rows) total += r.ms;
    fmt::print("profile: {} time per step by op ({:.2f} ms in ops of {:.2f} ms measured above)\n", gpu ? "GPU" : "CPU",
               total / o.steps, 1e3 * seconds / o.steps);
    for (const auto& r : rows)
      fmt::print("  {:<32} {:8.3f} ms {:5.1f}%  {:5} calls\n", r.op, r.ms / o.steps, 100.0 * r.ms / total,
                 r.calls / o.steps);
  }
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Time forward + backward-to-inputs of a frozen model with a KV prefix");
  auto o = std::make_shared<BenchOptions>();
  cmd->add_option("--arch", o->arch,
                  "gpt2 | bert | roberta | llama | mistral | qwen2 | qwen3 | smollm3 | gemma3_text | phi3")
      ->capture_default_str();
  cmd->add_option("--kv-heads", o->kv_heads, "key/value heads (LLaMA family; 0: heads/4)")->capture_default_str();
  cmd->add_option("--head-dim", o->head_dim, "per-head width (LLaMA family; 0: hidden/heads)")->capture_default_str();
  cmd->add_option("--layers", o->layers)->capture_default_str();
  cmd->add_option("--hidden", o->hidden)->capture_default_str();
  cmd->add_option("--heads", o->heads)->capture_default_str();
  cmd->add_option("--vocab", o->vocab)->capture_default_str();
  cmd->add_option("--intermediate", o->intermediate, "MLP width (0: the architecture's rule)")->capture_default_str();
  cmd->add_option("--batch", o->batch)->capture_default_str();
  cmd->add_option("--seq", o->seq)->capture_default_str();
  cmd->add_option("--prefix", o->prefix, "virtual tokens per layer")->capture_default_str();
  cmd->add_option("--steps", o->steps)->capture_default_str();
  cmd->add_option("--warmup", o->warmup)->capture_default_str();
  cmd->add_option("--device", o->device, "cpu | cuda")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "bf16 | f32 (the model's dtype on a GPU)")->capture_default_str();
  cmd->add_option("--peak-tflops", o->peak_tflops, "dense bf16 peak for the MFU")->capture_default_str();
  cmd->add_flag("--profile", o->profile, "print the step's time per op");
  cmd->add_flag("--recompute", o->recompute, "activation checkpointing (model.gradient_checkpointing)");
  cmd->add_option("--rows", o->rows, "rows per sequence the model returns, its last ones (1: a classification "
                                     "head's read); 0: every row")->capture_default_str();
  return [cmd, o] { return cmd->parsed() ? bench(*o) : -1; };
}

}  // namespace ptune::launch
