// Sampler: seeded determinism, disjoint rank slices covering each epoch,
// length bucketing, evaluation order.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "framework/core/error.h"
#include "framework/data/sampler.h"

namespace ptune::data {
namespace {

std::vector<int64_t> random_lengths(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  uint64_t x = 12345;
  for (auto& l : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    l = 5 + int64_t((x >> 33) % 200);
  }
  return v;
}

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& bs) {
  std::vector<int64_t> v;
  for (const auto& b : bs) v.insert(v.end(), b.begin(), b.end());
  return v;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(Sampler, DeterministicPerSeedAndEpoch) {
  const int64_t n = 1003;
  const auto len = random_lengths(n);
  for (bool bucket : {false, true}) {
    const Sampler a(n, len, 8, 42, bucket), b(n, len, 8, 42, bucket), c(n, len, 8, 43, bucket);
    EXPECT_EQ(a.epoch(0), b.epoch(0));
    EXPECT_EQ(a.epoch(3), b.epoch(3));
    EXPECT_NE(a.epoch(0), a.epoch(1));
    EXPECT_NE(a.epoch(0), c.epoch(0));
    EXPECT_NE(flatten(a.epoch(0)), iota(n));  // shuffled
  }
}

TEST(Sampler, OneRankSeesEveryExampleOnceWithOrWithoutBucketing) {
  const int64_t n = 1003;
  const auto len = random_lengths(n);
  for (bool bucket : {false, true}) {
    const Sampler s(n, len, 8, 7, bucket);
    const auto bs = s.epoch(2);
    ASSERT_EQ(int64_t(bs.size()), s.batches_per_epoch());
    EXPECT_EQ(bs.size(), 126u);  // ceil(1003 / 8)
    for (size_t i = 0; i + 1 < bs.size(); ++i) EXPECT_EQ(bs[i].size(), 8u);
    EXPECT_EQ(bs.back().size(), 3u);  // the partial batch stays last
    auto all = flatten(bs);
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, iota(n));
  }
}

TEST(Sampler, RanksTakeDisjointSlicesOfEachGlobalBatch) {
  const int64_t n = 1001, batch = 4;
  const int world = 3;
  const auto len = random_lengths(n);
  for (bool bucket : {false, true}) {
    // The world=1 sampler with the global batch is the reference order.
    const auto global = Sampler(n, len, batch * world, 9, bucket).epoch(1);
    std::vector<std::vector<std::vector<int64_t>>> per_rank;
    for (int r = 0; r < world; ++r) per_rank.push_back(Sampler(n, len, batch, 9, bucket, r, world).epoch(1));
    for (int r = 0; r < world; ++r) ASSERT_EQ(per_rank[size_t(r)].size(), global.size());
    std::set<int64_t> seen;
    for (size_t b = 0; b < global.size(); ++b) {
      std::vector<int64_t> joined;
      for (int r = 0; r < world; ++r) {
        const auto& slice = per_rank[size_t(r)][b];
        if (b + 1 < global.size()) EXPECT_EQ(int64_t(slice.size()), batch);
        joined.insert(joined.end(), slice.begin(), slice.end());
        for (int64_t i : slice) EXPECT_TRUE(seen.insert(i).second) << "example " << i << " read twice";
      }
      EXPECT_EQ(joined, global[b]);
    }
    EXPECT_EQ(int64_t(seen.size()), n);
    // 1001 = 83 * 12 + 5: the last global batch is split 1 / 2 / 2.
    EXPECT_EQ(per_rank[0].back().size(), 1u);
    EXPECT_EQ(per_rank[1].back().size(), 2u);
    EXPECT_EQ(per_rank[2].back().size(), 2u);
  }
  // Fewer examples left than ranks: some slices are empty, the batch count is equal.
  const auto r0 = Sampler(9, {}, 2, 1, false, 0, 4).epoch(0);
  const auto r3 = Sampler(9, {}, 2, 1, false, 3, 4).epoch(0);
  ASSERT_EQ(r0.size(), 2u);
  ASSERT_EQ(r3.size(), 2u);
  EXPECT_TRUE(r0.back().empty());
  EXPECT_EQ(r3.back().size(), 1u);
}

int64_t padding(const std::vector<std::vector<int64_t>>& bs, const std::vector<int64_t>& len) {
  int64_t pad = 0;
  for (const auto& b : bs) {
    int64_t mx = 0, sum = 0;
    for (int64_t i : b) mx = std::max(mx, len[size_t(i)]), sum += len[size_t(i)];
    pad += mx * int64_t(b.size()) - sum;
  }
  return pad;
}

TEST(Sampler, BucketingGroupsSimilarLengthsInRandomOrder) {
  const int64_t n = 4000;
  const auto len = random_lengths(n);
  const auto plain = Sampler(n, len, 16, 5, false).epoch(0);
  const auto bucketed = Sampler(n, len, 16, 5, true).epoch(0);
  EXPECT_LT(padding(bucketed, len) * 5, padding(plain, len));
  // Within a 50-batch chunk the sort is by length, but the batches come shuffled:
  // the batch maxima are not monotone.
  std::vector<int64_t> maxima;
  for (const auto& b : bucketed) {
    int64_t mx = 0;
    for (int64_t i : b) mx = std::max(mx, len[size_t(i)]);
    maxima.push_back(mx);
  }
  EXPECT_FALSE(std::is_sorted(maxima.begin(), maxima.end()));
  EXPECT_FALSE(std::is_sorted(maxima.rbegin(), maxima.rend()));
}

TEST(Sampler, SequentialForEvaluation) {
  const auto bs = Sampler::sequential(10, 4).epoch(0);
  ASSERT_EQ(bs.size(), 3u);
  EXPECT_EQ(bs[0], (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(bs[2], (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(Sampler::sequential(10, 4).epoch(5), bs);
  const auto r1 = Sampler::sequential(10, 2, 1, 2).epoch(0);
  ASSERT_EQ(r1.size(), 3u);
  EXPECT_EQ(r1[0], (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r1[2], (std::vector<int64_t>{9}));
}

TEST(Sampler, BadArguments) {
  EXPECT_THROW(Sampler(10, {}, 0, 1, false), Error);
  EXPECT_THROW(Sampler(10, {}, 2, 1, false, 2, 2), Error);
  EXPECT_THROW(Sampler(10, {1, 2}, 2, 1, true), Error);
}

}  // namespace
}  // namespace ptune::data
