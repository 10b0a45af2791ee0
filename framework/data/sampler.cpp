#include "framework/data/sampler.h"

#include <algorithm>
#include <numeric>

#include "framework/core/error.h"
#include "framework/core/rng.h"

namespace ptune::data {

namespace {

// Uniform in [0, m): 64 Philox bits of draw i of (seed, epoch, stream), scaled
// by a 128-bit multiply (Lemire) instead of a biased modulo.
uint64_t uniform_below(uint64_t seed, int64_t epoch, uint64_t stream, uint64_t i, uint64_t m) {
  const auto w = philox4x32(seed, (uint64_t(epoch) << 2) | stream, i);
  const uint64_t x = (uint64_t(w[0]) << 32) | w[1];
  return uint64_t((static_cast<unsigned __int128>(x) * m) >> 64);
}

template <class T>
void shuffle(std::vector<T>& v, uint64_t seed, int64_t epoch, uint64_t stream) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_below(seed, epoch, stream, i - 1, i)]);
}

}  // namespace

Sampler::Sampler(int64_t n, std::vector<int64_t> lengths, int64_t batch, uint64_t seed, bool bucket_by_length, int rank,
                 int world)
    : n_(n), lengths_(std::move(lengths)), batch_(batch), seed_(seed), bucket_(bucket_by_length), rank_(rank),
      world_(world) {
  PTUNE_CHECK(n >= 0, "sampler: negative dataset size {}", n);
  PTUNE_CHECK(batch > 0, "sampler: batch size must be positive, got {}", batch);
  PTUNE_CHECK(world > 0 && rank >= 0 && rank < world, "sampler: rank {} is not in [0, {})", rank, world);
  PTUNE_CHECK(!bucket_ || int64_t(lengths_.size()) == n, "sampler: {} lengths for {} examples", lengths_.size(), n);
}

Sampler Sampler::sequential(int64_t n, int64_t batch, int rank, int world) {
  Sampler s(n, {}, batch, 0, false, rank, world);
  s.shuffle_ = false;
  return s;
}

int64_t Sampler::batches_per_epoch() const { return (n_ + global_batch() - 1) / global_batch(); }

std::vector<std::vector<int64_t>> Sampler::epoch(int64_t e) const {
  std::vector<int64_t> order(static_cast<size_t>(n_));
  std::iota(order.begin(), order.end(), 0);
  const int64_t g = global_batch();
  if (shuffle_) shuffle(order, seed_, e, 0);
  if (shuffle_ && bucket_) {
    const int64_t chunk = kBucketBatches * g;
    for (int64_t c = 0; c < n_; c += chunk) {
      // Stable: equal lengths keep their shuffled order.
      std::stable_sort(order.begin() + c, order.begin() + std::min(n_, c + chunk),
                       [&](int64_t a, int64_t b) { return lengths_[size_t(a)] > lengths_[size_t(b)]; });
    }
  }
  // Global batch starts; the partial one, if any, stays last.
  const int64_t full = n_ / g;
  std::vector<int64_t> starts(static_cast<size_t>(full));
  for (int64_t b = 0; b < full; ++b) starts[size_t(b)] = b * g;
  if (shuffle_ && bucket_) shuffle(starts, seed_, e, 1);
  if (n_ % g != 0) starts.push_back(full * g);

  std::vector<std::vector<int64_t>> out;
  out.reserve(starts.size());
  for (int64_t s : starts) {
    const int64_t m = std::min(g, n_ - s);
    const int64_t lo = s + rank_ * m / world_, hi = s + (rank_ + 1) * m / world_;
    out.emplace_back(order.begin() + lo, order.begin() + hi);
  }
  return out;
}

}  // namespace ptune::data
