// bench_gpu: the P-Tuning v2 step of a frozen decoder on one GPU, built
// from the CUDA launchers (ops/cuda/kernels.h): per layer pre-norm, QKV
// GEMM, flash attention over a trainable KV prefix, output GEMM, residual,
// norm, MLP (GELU, or LLaMA's gated SiLU counted as its three GEMMs),
// residual — forward, then backward to the inputs and to the prefix.
// Random bf16 weights; the same step `ptune bench` times on the CPU.
// Prints tokens/s and MFU: (4·N + attention) FLOPs per token against the
// dense bf16 peak (989 TFLOP/s for an H100 SXM). The model plumbing
// (Transformer on a device) is not used yet: this times the kernels a GPU
// model step will launch, in the order it will launch them.
//
//   bench_gpu --preset gpt2-medium --seq 512 --batch 8 --json out.json
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "framework/core/arena.h"
#include "framework/core/memory_cuda.h"
#include "framework/core/rng.h"
#include "framework/core/stream.h"
#include "framework/ops/cuda/kernels.h"

namespace ptune {
namespace {

struct Shape_ {
  std::string name;
  int64_t layers, hidden, heads, kv_heads, inter;
  bool gated;  // LLaMA: gate and up projections, SiLU
};

struct Options {
  Shape_ shape{"gpt2-medium", 24, 1024, 16, 16, 4096, false};
  int64_t batch = 8, seq = 512, prefix = 20;
  DType dtype = DType::kBF16;
  int steps = 10, warmup = 3;
  double peak_tflops = 989.0;
  std::string json;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      PTUNE_CHECK(i + 1 < argc, "bench_gpu: {} needs a value", a);
      return argv[++i];
    };
    if (a == "--preset") {
      const std::string p = next();
      if (p == "gpt2-medium") o.shape = {"gpt2-medium", 24, 1024, 16, 16, 4096, false};
      else if (p == "llama-1b") o.shape = {"llama-1b", 16, 2048, 32, 8, 8192, true};
      else if (p == "tiny") o.shape = {"tiny", 2, 256, 4, 2, 1024, true};
      else PTUNE_FAIL("bench_gpu: unknown preset '{}' (gpt2-medium, llama-1b, tiny)", p);
    } else if (a == "--batch") o.batch = std::stoll(next());
    else if (a == "--seq") o.seq = std::stoll(next());
    else if (a == "--prefix") o.prefix = std::stoll(next());
    else if (a == "--steps") o.steps = std::stoi(next());
    else if (a == "--warmup") o.warmup = std::stoi(next());
    else if (a == "--peak-tflops") o.peak_tflops = std::stod(next());
    else if (a == "--dtype") {
      const std::string d = next();
      PTUNE_CHECK(d == "bf16" || d == "f32", "bench_gpu: --dtype {} (bf16 or f32)", d);
      o.dtype = d == "bf16" ? DType::kBF16 : DType::kF32;
    } else if (a == "--json") o.json = next();
    else PTUNE_FAIL("bench_gpu: unknown option '{}'", a);
  }
  return o;
}

struct Layer {
  Tensor ln1_w, ln1_b, qkv_w, qkv_b, o_w, o_b, ln2_w, ln2_b, up_w, up_b, down_w, down_b;
  Tensor prefix_k, prefix_v, dprefix_k, dprefix_v;  // (P, KVH·D); grads f32
};

// Saved per layer for backward.
struct Saved {
  Tensor x, ln1, mean1, rstd1, qkv, att, state, h, ln2, mean2, rstd2, up, act;
};

int run(const Options& o) {
  PTUNE_CHECK(cuda_device_count() > 0, "bench_gpu: no CUDA device visible");
  const Device gpu = Device::cuda(0);
  const auto& s = o.shape;
  const int64_t B = o.batch, T = o.seq, P = o.prefix, C = s.hidden, H = s.heads, KVH = s.kv_heads, D = C / H;
  const int64_t I = s.inter, up_width = s.gated ? 2 * I : I, N = B * T;
  const ops::NormKind norm = s.gated ? ops::NormKind::kRmsNorm : ops::NormKind::kLayerNorm;
  const ops::AttentionConfig cfg{H, KVH, D, ops::AttentionMask::kCausal, 1.0f / std::sqrt(float(D))};
  const DType dt = o.dtype;

  // One random layer on the CPU, copied into every layer on the GPU.
  Rng rng(0);
  auto random = [&](const Shape& shape, float stddev) {
    Tensor t = Tensor::empty(shape, DType::kF32);
    rng.fill_normal(t, 0.0f, stddev);
    return dt == DType::kF32 ? t : t.to(dt);
  };
  Layer proto;
  proto.ln1_w = random({C}, 0.1f);
  proto.ln1_b = random({C}, 0.1f);
  proto.qkv_w = random({cfg.qkv_width(), C}, 0.02f);
  proto.qkv_b = random({cfg.qkv_width()}, 0.02f);
  proto.o_w = random({C, C}, 0.02f);
  proto.o_b = random({C}, 0.02f);
  proto.ln2_w = random({C}, 0.1f);
  proto.ln2_b = random({C}, 0.1f);
  proto.up_w = random({up_width, C}, 0.02f);
  proto.up_b = random({up_width}, 0.02f);
  proto.down_w = random({C, I}, 0.02f);
  proto.down_b = random({C}, 0.02f);
  proto.prefix_k = random({P, cfg.kv_width()}, 1.0f);
  proto.prefix_v = random({P, cfg.kv_width()}, 1.0f);
  std::vector<Layer> layers(size_t(s.layers));
  for (Layer& l : layers) {
    l.ln1_w = proto.ln1_w.to(gpu);
    l.ln1_b = proto.ln1_b.to(gpu);
    l.qkv_w = proto.qkv_w.to(gpu);
    l.qkv_b = proto.qkv_b.to(gpu);
    l.o_w = proto.o_w.to(gpu);
    l.o_b = proto.o_b.to(gpu);
    l.ln2_w = proto.ln2_w.to(gpu);
    l.ln2_b = proto.ln2_b.to(gpu);
    l.up_w = proto.up_w.to(gpu);
    l.up_b = proto.up_b.to(gpu);
    l.down_w = proto.down_w.to(gpu);
    l.down_b = proto.down_b.to(gpu);
    l.prefix_k = proto.prefix_k.to(gpu);
    l.prefix_v = proto.prefix_v.to(gpu);
    l.dprefix_k = Tensor::zeros({P, cfg.kv_width()}, DType::kF32, gpu);
    l.dprefix_v = Tensor::zeros({P, cfg.kv_width()}, DType::kF32, gpu);
  }
  Tensor x0 = random({B, T, C}, 1.0f).to(gpu);
  Tensor dtop = random({B, T, C}, 1.0f).to(gpu);

  Stream stream = Stream::create(gpu);
  Arena arena(gpu);
  std::vector<Saved> saved(layers.size());
  const Tensor none;

  const ops::Activation act_kind = s.gated ? ops::Activation::kSilu : ops::Activation::kGeluTanh;
  auto gate_of = [&](const Tensor& up) { return s.gated ? up.view({N * 2, I}).slice(0, N) : up; };
  auto step = [&] {
    arena.reset();
    Tensor x = x0;
    for (size_t li = 0; li < layers.size(); ++li) {
      const Layer& l = layers[li];
      Saved& v = saved[li];
      v.x = x;
      v.ln1 = arena.alloc({B, T, C}, dt);
      v.mean1 = arena.alloc({N}, DType::kF32);
      v.rstd1 = arena.alloc({N}, DType::kF32);
      ops::cuda::norm_forward(norm, v.ln1, v.mean1, v.rstd1, x, l.ln1_w, s.gated ? none : l.ln1_b, 1e-5f, stream);
      v.qkv = arena.alloc({B, T, cfg.qkv_width()}, dt);
      ops::cuda::linear_forward(v.qkv, v.ln1, l.qkv_w, s.gated ? none : l.qkv_b, stream);
      v.att = arena.alloc({B, T, C}, dt);
      v.state = arena.alloc({ops::cuda::flash_state_numel(B, H, T)}, DType::kF32);
      ops::cuda::attention_forward(v.att, v.state, v.qkv, l.prefix_k, l.prefix_v, none, cfg, stream);
      Tensor proj = arena.alloc({B, T, C}, dt);
      ops::cuda::linear_forward(proj, v.att, l.o_w, s.gated ? none : l.o_b, stream);
      v.h = arena.alloc({B, T, C}, dt);
      v.ln2 = arena.alloc({B, T, C}, dt);
      v.mean2 = arena.alloc({N}, DType::kF32);
      v.rstd2 = arena.alloc({N}, DType::kF32);
      ops::cuda::residual_dropout_norm_forward(norm, v.ln2, v.h, v.mean2, v.rstd2, proj, x, l.ln2_w,
                                               s.gated ? none : l.ln2_b, 1e-5f, 0.0f, 0, 0, stream);
      v.up = arena.alloc({B, T, up_width}, dt);
      ops::cuda::linear_forward(v.up, v.ln2, l.up_w, s.gated ? none : l.up_b, stream);
      // Gated: the activation runs over N·I of the 2·N·I projected values
      // (a contiguous stand-in for the gate half: same bytes and FLOPs; the
      // ⊙ up product, one more elementwise pass, is left out).
      v.act = arena.alloc({B, T, I}, dt);
      ops::cuda::activation_forward(act_kind, v.act, gate_of(v.up), stream);
      Tensor down = arena.alloc({B, T, C}, dt);
      ops::cuda::linear_forward(down, v.act, l.down_w, s.gated ? none : l.down_b, stream);
      Tensor next = arena.alloc({B, T, C}, dt);
      ops::cuda::add_forward(next, v.h, down, stream);
      x = next;
    }
    // Backward to the inputs and the prefixes.
    Tensor dx = arena.alloc({B, T, C}, dt);
    dx.copy_from(dtop);
    for (size_t li = layers.size(); li-- > 0;) {
      const Layer& l = layers[li];
      const Saved& v = saved[li];
      Tensor dh = arena.zeros({B, T, C}, dt);
      ops::cuda::accumulate(dh, dx, stream);  // residual branch
      Tensor dact = arena.zeros({B, T, I}, dt);
      ops::cuda::linear_backward_input(dact, dx, l.down_w, stream);
      Tensor dup = arena.zeros({B, T, up_width}, dt);
      ops::cuda::activation_backward(act_kind, gate_of(dup), dact, gate_of(v.up), stream);
      Tensor dln2 = arena.zeros({B, T, C}, dt);
      ops::cuda::linear_backward_input(dln2, dup, l.up_w, stream);
      ops::cuda::norm_backward(norm, dh, none, none, dln2, v.h, l.ln2_w, v.mean2, v.rstd2, stream);
      Tensor datt = arena.zeros({B, T, C}, dt);
      ops::cuda::linear_backward_input(datt, dh, l.o_w, stream);
      Tensor dqkv = arena.zeros({B, T, cfg.qkv_width()}, dt);
      ops::cuda::attention_backward(dqkv, l.dprefix_k, l.dprefix_v, none, datt, v.att, v.qkv, v.state, l.prefix_k,
                                    l.prefix_v, cfg, stream);
      Tensor dln1 = arena.zeros({B, T, C}, dt);
      ops::cuda::linear_backward_input(dln1, dqkv, l.qkv_w, stream);
      Tensor dxin = arena.zeros({B, T, C}, dt);
      ops::cuda::accumulate(dxin, dh, stream);
      ops::cuda::norm_backward(norm, dxin, none, none, dln1, v.x, l.ln1_w, v.mean1, v.rstd1, stream);
      dx = dxin;
    }
  };

  for (int i = 0; i < o.warmup; ++i) step();
  stream.synchronize();
  const uint64_t mallocs = cuda::allocator_stats(0).system_allocations;
  std::vector<double> ms;
  for (int i = 0; i < o.steps; ++i) {
    Event a(gpu, Event::Timing::kEnabled), b(gpu, Event::Timing::kEnabled);
    a.record(stream);
    step();
    b.record(stream);
    b.synchronize();
    ms.push_back(Event::elapsed_ms(a, b));
  }
  std::sort(ms.begin(), ms.end());
  const double median_ms = ms[ms.size() / 2];
  // Non-embedding weights N (the GEMMs actually run), 4·N per token
  // (forward 2N, backward to activations 2N); attention forward 4·S·D·H,
  // backward 8·S·D·H per token and layer, S = P + T every key counted.
  const double n_weights = double(s.layers) * double(cfg.qkv_width() * C + C * C + up_width * C + C * I);
  const double S = double(P + T);
  const double flops_token = 4.0 * n_weights + 12.0 * double(s.layers) * S * double(C);
  const double tokens_s = double(N) / (median_ms / 1e3);
  const double mfu = tokens_s * flops_token / (o.peak_tflops * 1e12);
  const uint64_t steady = cuda::allocator_stats(0).system_allocations - mallocs;
  fmt::print("bench_gpu {} {} batch={} seq={} prefix={}: step {:.2f} ms (median of {}), {:.0f} tokens/s, "
             "{:.2f} GFLOP/token, MFU {:.1f}% of {} TFLOP/s, steady-state cudaMalloc {}\n",
             s.name, dtype_name(dt), B, T, P, median_ms, ms.size(), tokens_s, flops_token / 1e9, 100.0 * mfu,
             o.peak_tflops, steady);
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << fmt::format(
        "{{\"engine\": \"ptune\", \"shape\": \"{}\", \"dtype\": \"{}\", \"batch\": {}, \"seq\": {}, \"prefix\": {}, "
        "\"step_ms\": {:.4f}, \"tokens_per_s\": {:.1f}, \"flops_per_token\": {:.6g}, \"mfu\": {:.5f}, "
        "\"steady_state_cudamalloc\": {}}}\n",
        s.name, dtype_name(dt), B, T, P, median_ms, tokens_s, flops_token, mfu, steady);
  }
  return 0;
}

}  // namespace
}  // namespace ptune

int main(int argc, char** argv) {
  try {
    return ptune::run(ptune::parse(argc, argv));
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_gpu: {}\n", e.what());
    return 1;
  }
}
