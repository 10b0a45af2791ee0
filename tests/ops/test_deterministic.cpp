// PTUNE_DETERMINISTIC (ops/deterministic.h): 1 on, empty or 0 off, and any
// other value an error naming the variable rather than a silently ignored
// setting; ScopedDeterministic switches it for a test and restores it. What
// the mode changes is tested on a GPU (test_cuda_flash, test_cuda_model).
#include <gtest/gtest.h>

#include "framework/core/error.h"
#include "framework/ops/deterministic.h"
#include "expect_error.h"

namespace ptune {
namespace {

TEST(Deterministic, Parse) {
  EXPECT_FALSE(ops::parse_deterministic(""));
  EXPECT_FALSE(ops::parse_deterministic("0"));
  EXPECT_TRUE(ops::parse_deterministic("1"));
  testing::expect_error([] { ops::parse_deterministic("yes"); }, {"PTUNE_DETERMINISTIC=yes", "0 or 1"});
}

TEST(Deterministic, ScopedSettingRestoresThePreviousOne) {
  const bool before = ops::deterministic();
  {
    ops::ScopedDeterministic on(true);
    EXPECT_TRUE(ops::deterministic());
    {
      ops::ScopedDeterministic off(false);
      EXPECT_FALSE(ops::deterministic());
    }
    EXPECT_TRUE(ops::deterministic());
  }
  EXPECT_EQ(ops::deterministic(), before);
}

}  // namespace
}  // namespace ptune
