#include "framework/dist/sharded_weights.h"

#include <algorithm>
#include <utility>

#include "framework/core/error.h"

namespace ptune::dist {

namespace {

// The model's units as mutable objects: the weights are frozen (const) to
// everyone else, but sharding owns where their views point.
model::WeightUnit& unit_of(const model::Transformer& m, size_t u) {
  return const_cast<model::WeightUnit&>(m.weights().units()[u]);
}

void unbind(model::WeightUnit& unit) {
  for (const model::Param& p : unit.params) *p.slot = Tensor();
  unit.flat = Tensor();
}

}  // namespace

ShardedWeights::ShardedWeights(model::Transformer& model, Communicator& comm, bool keep_for_backward)
    : model_(model), comm_(comm), keep_(keep_for_backward) {
  const int64_t N = comm.size();
  const model::ShardLayout part{comm.rank(), N};
  const model::ModelWeights& weights = model.weights();
  units_.resize(weights.units().size());
  for (size_t u = 0; u < units_.size(); ++u) {
    model::WeightUnit& w = unit_of(model, u);
    // A unit is whole (flat) or was loaded as this rank's part (shard).
    const Tensor& held = w.flat.defined() ? w.flat : w.shard;
    PTUNE_CHECK(held.defined(), "sharding unit {}: its weights are not resident (sharded twice?)", w.name);
    PTUNE_CHECK(comm.supports(held.device()), "sharding unit {}: the communicator cannot gather {} memory", w.name,
                held.device().str());
    Unit& s = units_[u];
    s.numel = w.numel;
    s.padded = part.per_rank(w.numel) * N;
    s.dtype = held.dtype();
    s.device = held.device();
    if (w.flat.defined()) {
      const int64_t begin = part.begin(w.numel), end = part.end(w.numel);
      s.shard = Tensor::zeros({part.per_rank(w.numel)}, s.dtype, s.device);
      if (end > begin) s.shard.slice(0, end - begin).copy_from(w.flat.slice(begin, end));
      unbind(w);  // the full buffer goes when its last view does
    } else {
      PTUNE_CHECK(weights.shard_layout() == part,
                  "sharding unit {}: it was loaded as part {} of {}, but this communicator is rank {} of {}", w.name,
                  weights.shard_layout().rank, weights.shard_layout().ranks, part.rank, part.ranks);
      s.shard = std::exchange(w.shard, Tensor());
    }
    const int64_t elem = int64_t(dtype_size(s.dtype));
    full_bytes_ += w.numel * elem;
    live_bytes_ += s.shard.numel() * elem;
  }
  peak_bytes_ = live_bytes_;
  model.set_weight_gate(this);
}

ShardedWeights::~ShardedWeights() {
  for (Unit& s : units_)
    if (s.pending) s.pending->wait();
  model_.set_weight_gate(nullptr);
}

void ShardedWeights::start_gather(size_t u) {
  Unit& s = units_[u];
  if (s.full.defined()) return;
  // On a GPU the caching allocator hands back a block of a dropped unit;
  // the communicator orders the gather after the compute work queued so far
  // (which includes every read of that block).
  s.full = Tensor::empty({s.padded}, s.dtype, s.device);
  live_bytes_ += s.bytes();
  peak_bytes_ = std::max(peak_bytes_, live_bytes_);
  const std::span<const uint8_t> send(static_cast<const uint8_t*>(s.shard.raw()), s.shard.nbytes());
  s.pending = comm_.all_gather_async(send, std::span<uint8_t>(static_cast<uint8_t*>(s.full.raw()), s.full.nbytes()));
}

void ShardedWeights::ensure(size_t u) {
  Unit& s = units_[u];
  start_gather(u);
  if (s.pending) {
    s.pending->wait();
    s.pending.reset();
  }
  if (!s.bound) {
    unit_of(model_, u).bind(s.full.slice(0, s.numel));
    s.bound = true;
  }
}

void ShardedWeights::drop(size_t u) {
  Unit& s = units_[u];
  if (!s.full.defined()) return;
  if (s.pending) {
    s.pending->wait();
    s.pending.reset();
  }
  unbind(unit_of(model_, u));
  s.full = Tensor();
  s.bound = false;
  live_bytes_ -= s.bytes();
}

void ShardedWeights::begin_micro_batch(bool backward) {
  backward_ = backward;
  const size_t L = size_t(model_.spec().layers);
  ensure(0);
  if (units_.size() > L + 1) ensure(L + 1);  // the heads, when the model has any
}

void ShardedWeights::end_micro_batch() {
  for (size_t u = 0; u < units_.size(); ++u) drop(u);
}

void ShardedWeights::acquire(int64_t unit, int64_t next, Pass) {
  PTUNE_CHECK(unit >= 0 && size_t(unit) < units_.size(), "weight gate: no unit {}", unit);
  ensure(size_t(unit));
  if (next >= 0) start_gather(size_t(next));
}

void ShardedWeights::release(int64_t unit, Pass pass) {
  const bool kept = (unit == 0 && keep_embeddings_) || (pass == Pass::kForward && keep_ && backward_);
  if (!kept) drop(size_t(unit));
  // Block 0's gather starts once the embeddings are done with (not with
  // them: the peak stays at the shards + the embeddings or two blocks).
  if (unit == 0 && pass == Pass::kForward && model_.spec().layers > 0) start_gather(1);
}

}  // namespace ptune::dist
