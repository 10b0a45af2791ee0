// Which examples go into which batch, per epoch, on which rank.
//
// One epoch: a seeded shuffle of 0..n-1 (Philox, a pure function of
// (seed, epoch)), cut into global batches of batch × world examples; rank r
// takes the r-th slice of every global batch, so the ranks read disjoint
// slices that together cover the epoch, and world = 1 sees every example
// once. With bucket_by_length, the shuffled order is cut into chunks of 50
// global batches, each chunk sorted by length (longest first) before the
// cut, and the full batches' order is shuffled again: batches hold similar
// lengths (less padding) and still come in random order. The last global
// batch may be partial; it stays last and is split as evenly as possible
// (slices differ by at most one example; a rank's slice is empty when fewer
// examples than ranks are left). Every rank gets the same number of
// batches, so collectives stay in step.
//
// Gradient accumulation is the caller's: `batch` is the micro-batch, and a
// step takes grad_accum consecutive batches (global batch = micro_batch ×
// grad_accum × world).
#pragma once

#include <cstdint>
#include <vector>

namespace ptune::data {

class Sampler {
 public:
  // lengths: per example (Dataset::lengths()); only read with bucketing.
  Sampler(int64_t n, std::vector<int64_t> lengths, int64_t batch, uint64_t seed, bool bucket_by_length, int rank = 0,
          int world = 1);
  // Evaluation: 0..n-1 in order, no shuffle.
  static Sampler sequential(int64_t n, int64_t batch, int rank = 0, int world = 1);

  // This rank's batches of epoch e (example indices).
  std::vector<std::vector<int64_t>> epoch(int64_t e) const;
  int64_t batches_per_epoch() const;
  int64_t global_batch() const { return batch_ * world_; }

  static constexpr int64_t kBucketBatches = 50;  // global batches per length-sorted chunk

 private:
  Sampler() = default;

  int64_t n_ = 0;
  std::vector<int64_t> lengths_;
  int64_t batch_ = 1;
  uint64_t seed_ = 0;
  bool shuffle_ = true;
  bool bucket_ = false;
  int rank_ = 0;
  int world_ = 1;
};

}  // namespace ptune::data
