// PTUNE_CANDIDATES (ops/candidates.h): names select kernels under
// evaluation, 1 selects all, empty or 0 none, and an unknown name is an
// error naming it rather than a silently ignored setting; ScopedCandidates
// switches them for a test and restores the previous set.
#include <gtest/gtest.h>

#include <string>

#include "framework/core/error.h"
#include "framework/ops/candidates.h"
#include "expect_error.h"

namespace ptune {
namespace {

using ops::Candidate;
using ops::candidate_enabled;
using ops::parse_candidates;

constexpr uint32_t bit(Candidate c) { return uint32_t(1) << uint32_t(c); }

TEST(Candidates, Parse) {
  EXPECT_EQ(parse_candidates(""), 0u);
  EXPECT_EQ(parse_candidates("0"), 0u);
  EXPECT_EQ(parse_candidates("1"), bit(Candidate::kForward32) | bit(Candidate::kBackward32) |
                                       bit(Candidate::kOneLaunch) | bit(Candidate::kGemmAutotune) |
                                       bit(Candidate::kRopeVec) | bit(Candidate::kDqAtomic) |
                                       bit(Candidate::kNormWarp));
  EXPECT_EQ(parse_candidates("backward32,gemm_autotune"), bit(Candidate::kBackward32) | bit(Candidate::kGemmAutotune));
  EXPECT_EQ(parse_candidates("one_launch"), bit(Candidate::kOneLaunch));
  EXPECT_EQ(parse_candidates("dq_atomic"), bit(Candidate::kDqAtomic));
}

TEST(Candidates, UnknownNameIsAnError) {
  testing::expect_error([] { parse_candidates("forward32,fast"); }, {"unknown candidate 'fast'"});
}

TEST(Candidates, ScopedSelectionRestoresThePreviousOne) {
  const bool before = candidate_enabled(Candidate::kForward32);
  {
    ops::ScopedCandidates all("1");
    EXPECT_TRUE(candidate_enabled(Candidate::kForward32));
    {
      ops::ScopedCandidates one("gemm_autotune");
      EXPECT_FALSE(candidate_enabled(Candidate::kForward32));
      EXPECT_TRUE(candidate_enabled(Candidate::kGemmAutotune));
    }
    EXPECT_TRUE(candidate_enabled(Candidate::kOneLaunch));
  }
  EXPECT_EQ(candidate_enabled(Candidate::kForward32), before);
}

}  // namespace
}  // namespace ptune
