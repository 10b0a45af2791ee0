// PTUNE_CANDIDATES (ops/candidates.h): names select kernels under
// evaluation, 1 selects all, unset or 0 none, and an unknown name is an
// error naming it rather than a silently ignored setting.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "framework/core/error.h"
#include "framework/ops/candidates.h"

namespace ptune {
namespace {

using ops::Candidate;
using ops::candidate_enabled;

struct Env {
  explicit Env(const char* value) {
    if (value) setenv("PTUNE_CANDIDATES", value, 1);
    else unsetenv("PTUNE_CANDIDATES");
  }
  ~Env() { unsetenv("PTUNE_CANDIDATES"); }
};

TEST(Candidates, OffUnlessNamed) {
  for (const char* off : {static_cast<const char*>(nullptr), "", "0"}) {
    Env env(off);
    EXPECT_FALSE(candidate_enabled(Candidate::kForward32));
    EXPECT_FALSE(candidate_enabled(Candidate::kGemmAutotune));
  }
}

TEST(Candidates, OneSelectsAll) {
  Env env("1");
  for (Candidate c : {Candidate::kForward32, Candidate::kBackward32, Candidate::kOneLaunch, Candidate::kGemmAutotune})
    EXPECT_TRUE(candidate_enabled(c));
}

TEST(Candidates, ListSelectsTheNamedOnes) {
  Env env("backward32,gemm_autotune");
  EXPECT_FALSE(candidate_enabled(Candidate::kForward32));
  EXPECT_TRUE(candidate_enabled(Candidate::kBackward32));
  EXPECT_FALSE(candidate_enabled(Candidate::kOneLaunch));
  EXPECT_TRUE(candidate_enabled(Candidate::kGemmAutotune));
}

TEST(Candidates, UnknownNameIsAnError) {
  Env env("forward32,fast");
  try {
    candidate_enabled(Candidate::kForward32);
    ADD_FAILURE() << "no error for an unknown candidate";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown candidate 'fast'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ptune
