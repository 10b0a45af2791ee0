// Multi-rank checks, run by ctest through mpirun (registered in
// tests/dist/driver/CMakeLists.txt).
//
//   dist_driver comm [cuda]               collectives of every type against hand-computed values
//                                         (cuda: NCCL, one GPU per local rank: host memory staged,
//                                         and f32/bf16 device tensors; the all-gather timed)
//   dist_driver shard ARCH LAYERS KEEP    a sharded model (prefetching gathers) computes the
//                                         replicated model's forward and backward bit for bit;
//                                         gathered bytes and peak frozen memory per rank
//   dist_driver gather ARCH LAYERS DTYPE [cuda]
//                                         every unit of a model sharded in DTYPE (f32, bf16) gathers
//                                         the replicated model's bytes (cuda: on the GPU, NCCL)
//
// Each rank checks itself; any mismatch throws, the rank prints it and the
// job aborts non-zero (as ptune does). The cuda modes exit 77 (ctest's
// skip) on every rank when this node has fewer GPUs than ranks.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dist/shard_check.h"
#include "framework/core/arena.h"
#include "framework/core/error.h"
#include "framework/core/rng.h"
#include "framework/core/stream.h"
#include "framework/dist/mpi_communicator.h"
#include "framework/dist/nccl_communicator.h"
#include "framework/dist/sharded_weights.h"
#include "framework/model/transformer.h"

namespace ptune {
namespace {

void collectives(dist::Communicator& c) {
  const int N = c.size(), r = c.rank();
  // all_reduce: rank r contributes (r + 1)·(i + 1) in f32, f64 and i64.
  std::vector<float> f(5);
  std::vector<double> d(3);
  std::vector<int64_t> n(4);
  for (size_t i = 0; i < f.size(); ++i) f[i] = float((r + 1) * (i + 1));
  for (size_t i = 0; i < d.size(); ++i) d[i] = double((r + 1) * (i + 1)) * 0.5;
  for (size_t i = 0; i < n.size(); ++i) n[i] = int64_t((r + 1) * (i + 1)) << 33;
  c.all_reduce(std::span<float>(f));
  c.all_reduce(std::span<double>(d));
  c.all_reduce(std::span<int64_t>(n));
  const int64_t tri = int64_t(N) * (N + 1) / 2;
  for (size_t i = 0; i < f.size(); ++i) PTUNE_CHECK(f[i] == float(tri * int64_t(i + 1)), "all_reduce f32[{}] = {}", i, f[i]);
  for (size_t i = 0; i < d.size(); ++i) PTUNE_CHECK(d[i] == double(tri * int64_t(i + 1)) * 0.5, "all_reduce f64[{}]", i);
  for (size_t i = 0; i < n.size(); ++i) PTUNE_CHECK(n[i] == (tri * int64_t(i + 1)) << 33, "all_reduce i64[{}]", i);
  int64_t m = r;
  c.all_reduce(std::span<int64_t>(&m, 1), dist::ReduceOp::kMax);
  PTUNE_CHECK(m == N - 1, "all_reduce max = {}", m);

  // all_gather, blocking and not: recv[k·3 + j] = 10·k + j.
  std::vector<float> send = {float(10 * r), float(10 * r + 1), float(10 * r + 2)}, recv(size_t(3 * N)), recv2(recv);
  const dist::CommStats before = c.stats();
  c.all_gather(std::span<const float>(send), std::span<float>(recv));
  auto req = c.all_gather_async(std::span<const float>(send), std::span<float>(recv2));
  req->wait();
  for (int k = 0; k < N; ++k)
    for (int j = 0; j < 3; ++j) {
      PTUNE_CHECK(recv[size_t(3 * k + j)] == float(10 * k + j), "all_gather[{}]", 3 * k + j);
      PTUNE_CHECK(recv2[size_t(3 * k + j)] == float(10 * k + j), "all_gather_async[{}]", 3 * k + j);
    }
  PTUNE_CHECK(c.stats().all_gather_bytes - before.all_gather_bytes == 2 * 3 * N * 4, "all-gather bytes counted {}",
              c.stats().all_gather_bytes - before.all_gather_bytes);

  // broadcast from the last rank.
  std::vector<uint8_t> bytes = {uint8_t(r), uint8_t(r + 1)};
  c.broadcast(std::span<uint8_t>(bytes), N - 1);
  PTUNE_CHECK(bytes[0] == N - 1 && bytes[1] == N, "broadcast got {} {}", bytes[0], bytes[1]);

  // a mismatched gather size is an error, not a hang.
  bool threw = false;
  try {
    c.all_gather(std::span<const float>(send), std::span<float>(recv.data(), 2));
  } catch (const Error&) {
    threw = true;
  }
  PTUNE_CHECK(threw, "all_gather with a wrong receive size did not throw");
  c.barrier();
  if (r == 0) fmt::print("collectives ok on {} ranks\n", N);
}

using dist_test::same_bytes;

#ifdef PTUNE_HAS_NCCL
// Device tensors over N ranks: rank r's f32 (r + 1)·(i % 7) summed, bf16
// rows gathered in rank order, a broadcast from the last rank; then the
// all-gather of a 64 MiB output timed (the order of a LLaMA-7B block).
void device_collectives(dist::NcclCommunicator& c) {
  const int N = c.size(), r = c.rank();
  const Device dev = c.device();
  const int64_t n = 1 << 20;
  Tensor h = Tensor::empty({n}, DType::kF32);
  for (int64_t i = 0; i < n; ++i) h.data<float>()[i] = float(r + 1) * float(i % 7);
  const Tensor d = h.to(dev);
  c.all_reduce(d);
  const Tensor back = d.to(Device::cpu());
  const float tri = float(N * (N + 1) / 2);
  for (int64_t i = 0; i < n; i += 4099)
    PTUNE_CHECK(back.data<float>()[i] == tri * float(i % 7), "device all_reduce[{}] = {}", i, back.data<float>()[i]);

  // bf16 values k + j/8 are exact in bf16.
  Tensor hb = Tensor::empty({8}, DType::kF32);
  for (int64_t j = 0; j < 8; ++j) hb.data<float>()[j] = float(r) + float(j) / 8.0f;
  const Tensor send = hb.to(DType::kBF16).to(dev), recv = Tensor::zeros({8 * N}, DType::kBF16, dev);
  c.all_gather_async(send, recv)->wait();
  const Tensor got = recv.to(Device::cpu()).to(DType::kF32);
  for (int k = 0; k < N; ++k)
    for (int j = 0; j < 8; ++j)
      PTUNE_CHECK(got.data<float>()[8 * k + j] == float(k) + float(j) / 8.0f, "device all_gather bf16[{}]", 8 * k + j);

  c.broadcast(d, N - 1);
  const Tensor b = d.to(Device::cpu());
  PTUNE_CHECK(b.data<float>()[5] == tri * 5.0f, "device broadcast");

  const int64_t per = (int64_t(16) << 20) / N;  // floats per rank: 64 MiB gathered
  const Tensor bs = Tensor::zeros({per}, DType::kF32, dev), bg = Tensor::zeros({per * N}, DType::kF32, dev);
  for (int it = 0; it < 3; ++it) c.all_gather(bs, bg);
  const Stream compute = Stream::default_stream(dev);
  Event t0(dev, Event::Timing::kEnabled), t1(dev, Event::Timing::kEnabled);
  t0.record(compute);
  for (int it = 0; it < 10; ++it) c.all_gather_async(bs, bg)->wait();
  t1.record(compute);
  t1.synchronize();
  c.barrier();
  if (r == 0)
    fmt::print("nccl ok on {} ranks: all-gather of a 64 MiB output {:.3f} ms\n", N, Event::elapsed_ms(t0, t1) / 10);
}
#endif

void shard(dist::Communicator& c, const std::string& arch, int64_t layers, bool keep) {
  model::ModelSpec spec = model::ModelSpec::tiny(model::arch_from_name(arch));
  spec.layers = layers;
  spec.max_positions = 128;  // as a real model's, the embeddings a few % of Ψ, not the tiny preset's ~50%
  auto ref = dist_test::random_model(spec);
  auto sharded = dist_test::random_model(spec);
  dist::ShardedWeights sw(*sharded, c, keep);

  const int64_t B = 2, T = 8, C = spec.hidden, P = 3, KV = spec.attention_config().kv_width();
  Rng rng(99 + uint64_t(c.rank()));  // each rank its own batch, as in data parallelism
  Arena a1, a2;
  int64_t gathered_per_micro = 0;
  for (int micro = 0; micro < 2; ++micro) {
    Tensor embeds = Tensor::zeros({B, T, C}, DType::kF32, Device::cpu());
    rng.fill_normal(embeds, 0.0f, 1.0f);
    Tensor pos = Tensor::zeros({B, T}, DType::kI32, Device::cpu());
    ref->default_position_ids(pos, Tensor(), P);
    Tensor mask = Tensor::zeros({B, T}, DType::kI32, Device::cpu());
    for (int64_t i = 0; i < B * T; ++i) mask.data<int32_t>()[i] = i < B * T - 3;  // padding at the end
    model::KvPrefix prefix, dprefix_ref, dprefix_sh;
    for (int64_t l = 0; l < layers; ++l) {
      Tensor k = Tensor::zeros({P, KV}, DType::kF32, Device::cpu()), v = Tensor::zeros({P, KV}, DType::kF32, Device::cpu());
      rng.fill_normal(k, 0.0f, 1.0f);
      rng.fill_normal(v, 0.0f, 1.0f);
      prefix.keys.push_back(k);
      prefix.values.push_back(v);
      for (model::KvPrefix* d : {&dprefix_ref, &dprefix_sh}) {
        d->keys.push_back(Tensor::zeros({P, KV}, DType::kF32, Device::cpu()));
        d->values.push_back(Tensor::zeros({P, KV}, DType::kF32, Device::cpu()));
      }
    }
    model::ModelInputs in{embeds, pos, Tensor(), mask, &prefix};
    Tensor dhidden = Tensor::zeros({B, T, C}, DType::kF32, Device::cpu());
    rng.fill_normal(dhidden, 0.0f, 1.0f);

    const Tensor h_ref = ref->forward(in, a1);
    Tensor dx_ref = Tensor::zeros({B, T, C}, DType::kF32, Device::cpu());
    ref->backward(dhidden, {dx_ref, &dprefix_ref}, a1);

    const int64_t g0 = c.stats().all_gather_bytes;
    sw.begin_micro_batch(true);
    const Tensor h_sh = sharded->forward(in, a2);
    Tensor dx_sh = Tensor::zeros({B, T, C}, DType::kF32, Device::cpu());
    sharded->backward(dhidden, {dx_sh, &dprefix_sh}, a2);
    sw.end_micro_batch();
    gathered_per_micro = c.stats().all_gather_bytes - g0;

    PTUNE_CHECK(same_bytes(h_ref, h_sh), "micro-batch {}: sharded forward differs from the replicated one", micro);
    PTUNE_CHECK(same_bytes(dx_ref, dx_sh), "micro-batch {}: sharded input gradient differs", micro);
    for (int64_t l = 0; l < layers; ++l)
      PTUNE_CHECK(same_bytes(dprefix_ref.keys[size_t(l)], dprefix_sh.keys[size_t(l)]) &&
                      same_bytes(dprefix_ref.values[size_t(l)], dprefix_sh.values[size_t(l)]),
                  "micro-batch {}: sharded prefix gradient of layer {} differs", micro, l);
    a1.reset();
    a2.reset();
  }

  // Bytes: every unit once in forward; without keep the blocks again in
  // backward, and BERT's embeddings for its embedding norm's backward.
  int64_t psi = 0, blocks = 0;
  for (size_t u = 0; u < sw.num_units(); ++u) psi += sw.unit_bytes(u);
  for (int64_t l = 0; l < layers; ++l) blocks += sw.unit_bytes(size_t(1 + l));
  const int64_t expected = keep ? psi : psi + blocks + (spec.embedding_norm ? sw.unit_bytes(0) : 0);
  PTUNE_CHECK(gathered_per_micro == expected, "all-gathered {} bytes per micro-batch, expected {} (Ψ = {})",
              gathered_per_micro, expected, psi);
  PTUNE_CHECK(gathered_per_micro <= 2 * psi, "more than 2Ψ gathered");

  int64_t peak = sw.peak_frozen_bytes();
  c.all_reduce(std::span<int64_t>(&peak, 1), dist::ReduceOp::kMax);
  const double ratio = double(peak) / double(sw.full_bytes());
  if (c.rank() == 0)
    fmt::print("{} L={} keep={} ranks={}: Ψ = {} B, gathered {} B per micro-batch, peak frozen {} B per rank "
               "= {:.3f} of unsharded\n",
               arch, layers, keep, c.size(), sw.full_bytes(), gathered_per_micro, peak, ratio);
  if (!keep && c.size() == 4) PTUNE_CHECK(ratio <= 0.3, "peak frozen memory {:.3f} of unsharded > 0.3", ratio);
}

void gather(dist::Communicator& c, const std::string& arch, int64_t layers, DType dtype, Device device) {
  model::ModelSpec spec = model::ModelSpec::tiny(model::arch_from_name(arch));
  spec.layers = layers;
  dist_test::check_sharded_gathers(c, spec, device, dtype);
  if (c.rank() == 0)
    fmt::print("{} L={} {} on {}: every unit gathered byte for byte over {} ranks\n", arch, layers, dtype_name(dtype),
               device.str(), c.size());
}

constexpr int kSkip = 77;  // ctest's SKIP_RETURN_CODE

// The world's NCCL communicator on this rank's GPU, or nullptr (skip) when
// the node has fewer GPUs than ranks or the build has no NCCL.
std::unique_ptr<dist::Communicator> nccl_world(dist::Communicator& world) {
  const dist::LaunchEnv env = dist::launch_env();
  if (cuda_device_count() < env.local_size) return nullptr;
#ifdef PTUNE_HAS_NCCL
  return dist::make_nccl_communicator(world, env.local_rank);
#else
  (void)world;
  return nullptr;
#endif
}

int run(dist::Communicator& world, int argc, char** argv) {
  const std::string usage = "usage: dist_driver comm [cuda] | shard ARCH LAYERS KEEP | gather ARCH LAYERS DTYPE [cuda]";
  PTUNE_CHECK(argc >= 2, "{}", usage);
  const std::string mode = argv[1];
  const bool cuda = std::string(argv[argc - 1]) == "cuda";
  std::unique_ptr<dist::Communicator> nccl;
  if (cuda) {
    nccl = nccl_world(world);
    if (!nccl) {
      if (world.rank() == 0) fmt::print("skipped: needs NCCL and a GPU per rank\n");
      return kSkip;
    }
  }
  dist::Communicator& c = cuda ? *nccl : world;
  if (mode == "comm") {
    collectives(c);
#ifdef PTUNE_HAS_NCCL
    if (cuda) device_collectives(static_cast<dist::NcclCommunicator&>(c));
#endif
  } else if (mode == "shard") {
    PTUNE_CHECK(argc == 5, "{}", usage);
    shard(c, argv[2], std::atoll(argv[3]), std::atoi(argv[4]) != 0);
  } else if (mode == "gather") {
    PTUNE_CHECK(argc == 5 + int(cuda), "{}", usage);
    const std::string dt = argv[4];
    PTUNE_CHECK(dt == "f32" || dt == "bf16", "gather: dtype '{}' (f32 or bf16)", dt);
    gather(c, argv[2], std::atoll(argv[3]), dt == "f32" ? DType::kF32 : DType::kBF16,
           cuda ? Device::cuda(dist::launch_env().local_rank) : Device::cpu());
  } else {
    PTUNE_FAIL("unknown mode '{}'; {}", mode, usage);
  }
  return 0;
}

}  // namespace
}  // namespace ptune

int main(int argc, char** argv) {
  ptune::dist::MpiSession mpi(&argc, &argv);
  try {
    return ptune::run(mpi.communicator(), argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_driver: rank %d: error: %s\n", mpi.communicator().rank(), e.what());
    std::fflush(stderr);
    mpi.abort(1);
  }
  return 0;
}
