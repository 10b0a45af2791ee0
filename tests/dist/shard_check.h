// Sharding checks shared by the CPU tests (tests/dist), the GPU tests
// (tests/cuda/test_cuda_dist.cpp) and the mpirun driver: no gtest here, a
// failed check throws ptune::Error with the unit and what differed.
#pragma once

#include <cstring>
#include <memory>
#include <set>

#include "framework/core/error.h"
#include "framework/core/rng.h"
#include "framework/dist/sharded_weights.h"
#include "framework/model/transformer.h"

namespace ptune::dist_test {

inline bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.numel() != b.numel()) return false;
  const Tensor ha = a.device().is_cpu() ? a : a.to(Device::cpu());
  const Tensor hb = b.device().is_cpu() ? b : b.to(Device::cpu());
  return std::memcmp(ha.raw(), hb.raw(), ha.nbytes()) == 0;
}

// The same random weights on every rank and in every copy, moved to
// `device` in `dtype` (as ModelWeights::to does for a real run).
inline std::unique_ptr<model::Transformer> random_model(const model::ModelSpec& spec, Device device = Device::cpu(),
                                                        DType dtype = DType::kF32) {
  Rng rng(1234);
  std::set<model::Component> comps;
  if (spec.arch != model::Arch::kGpt2) comps = {model::Component::kPooler};
  auto m = std::make_unique<model::Transformer>(spec, model::ModelWeights::random(spec, comps, rng));
  m->weights().to(device, dtype);
  return m;
}

// Shards `spec`'s model over `comm` in `dtype` on `device`, runs every unit
// through the gate as one forward pass does (acquire with the next unit
// prefetched, release), and checks each gathered unit against the resident
// model byte for byte, and the byte counts: each unit padded to N ranks,
// Ψ gathered once, Ψ/N resident between micro-batches.
inline void check_sharded_gathers(dist::Communicator& comm, const model::ModelSpec& spec, Device device, DType dtype) {
  const auto ref = random_model(spec, device, dtype);
  auto sharded = random_model(spec, device, dtype);
  dist::ShardedWeights sw(*sharded, comm, false);
  const auto& units = sharded->weights().units();
  PTUNE_CHECK(sw.num_units() == units.size(), "{} shards for {} units", sw.num_units(), units.size());
  PTUNE_CHECK(!units[1].flat.defined(), "block 0 resident after sharding");

  const int64_t N = comm.size(), elem = int64_t(dtype_size(dtype));
  int64_t psi = 0;
  for (size_t u = 0; u < units.size(); ++u) {
    const int64_t padded = (units[u].numel + N - 1) / N * N;
    PTUNE_CHECK(sw.unit_bytes(u) == padded * elem, "unit {}: {} bytes counted, {} padded elements of {} bytes", u,
                sw.unit_bytes(u), padded, elem);
    psi += sw.unit_bytes(u);
  }
  PTUNE_CHECK(sw.full_bytes() == sharded->weights().parameter_count() * elem, "full bytes {}", sw.full_bytes());

  using Pass = model::WeightGate::Pass;
  const int64_t g0 = comm.stats().all_gather_bytes;
  sw.begin_micro_batch(false);
  const int64_t n = int64_t(units.size());
  for (int64_t u = 0; u < n; ++u) {
    sw.acquire(u, u + 1 < n ? u + 1 : -1, Pass::kForward);
    const Tensor& got = units[size_t(u)].flat;
    PTUNE_CHECK(got.defined() && got.device() == device && got.dtype() == dtype, "unit {}: not gathered on {} in {}",
                u, device.str(), dtype_name(dtype));
    PTUNE_CHECK(same_bytes(got, ref->weights().units()[size_t(u)].flat), "unit {}: gathered bytes differ", u);
    sw.release(u, Pass::kForward);
  }
  sw.end_micro_batch();
  PTUNE_CHECK(comm.stats().all_gather_bytes - g0 == psi, "{} bytes gathered for Ψ = {}",
              comm.stats().all_gather_bytes - g0, psi);
  PTUNE_CHECK(sw.frozen_bytes() * N == psi, "{} bytes resident after the micro-batch, Ψ/N = {}", sw.frozen_bytes(),
              psi / N);
  PTUNE_CHECK(!units[1].flat.defined(), "block 0 still bound after end_micro_batch");
}

}  // namespace ptune::dist_test
