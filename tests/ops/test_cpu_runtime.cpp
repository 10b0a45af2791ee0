// ops/cpu/cpu_runtime.h: the settings ptune restarts itself with, and each
// rank's share of the node's CPUs.
#include <gtest/gtest.h>

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "framework/ops/cpu/cpu_runtime.h"

namespace ptune {
namespace {

std::string value_of(const std::vector<std::pair<std::string, std::string>>& env, const std::string& name) {
  for (const auto& [k, v] : env)
    if (k == name) return v;
  return "";
}

TEST(CpuRuntime, SpinCountIsSetUnlessTheUserChoseAWaitPolicy) {
  unsetenv("GOMP_SPINCOUNT");
  unsetenv("OMP_WAIT_POLICY");
  EXPECT_EQ(value_of(ops::runtime_env_overrides(), "GOMP_SPINCOUNT"), "10000");
  setenv("OMP_WAIT_POLICY", "active", 1);
  EXPECT_EQ(value_of(ops::runtime_env_overrides(), "GOMP_SPINCOUNT"), "");
  unsetenv("OMP_WAIT_POLICY");
  setenv("GOMP_SPINCOUNT", "infinity", 1);
  EXPECT_EQ(value_of(ops::runtime_env_overrides(), "GOMP_SPINCOUNT"), "");
  unsetenv("GOMP_SPINCOUNT");
}

TEST(CpuRuntime, RanksShareTheCpusTheyMayRunOn) {
  cpu_set_t mask;
  ASSERT_EQ(sched_getaffinity(0, sizeof(mask), &mask), 0);
  const int allowed = CPU_COUNT(&mask), online = int(sysconf(_SC_NPROCESSORS_ONLN));
  EXPECT_EQ(ops::default_cpu_threads(1), std::min(allowed, online));
  EXPECT_EQ(ops::default_cpu_threads(online), 1);
  EXPECT_EQ(ops::default_cpu_threads(4 * online), 1);  // oversubscribed: never 0
  EXPECT_EQ(ops::default_cpu_threads(2), std::max(1, std::min(allowed, online / 2)));
}

}  // namespace
}  // namespace ptune
