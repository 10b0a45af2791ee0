// ParameterSet::to: moving the flat buffers between devices (the CPU side;
// tests/cuda/test_cuda_train_side.cpp does the CPU → GPU → CPU round trip).
#include <gtest/gtest.h>

#include "framework/core/parameters.h"
#include "framework/core/stream.h"

namespace ptune {
namespace {

ParameterSet filled_set() {
  ParameterSet params;
  params.add("w", {2, 3});
  params.add("b", {4}, Decay::kExempt);
  params.finalize();
  for (int64_t i = 0; i < params.numel(); ++i) {
    params.values().data<float>()[i] = float(i) + 0.5f;
    params.grads().data<float>()[i] = -float(i);
  }
  return params;
}

TEST(ParameterSet, ToItsOwnDeviceKeepsTheBuffers) {
  ParameterSet params = filled_set();
  const void* values = params.values().raw();
  const void* grads = params.grads().raw();
  EXPECT_EQ(params.device(), Device::cpu());
  params.to(Device::cpu());
  // No copy: the same storage, so views taken before the call stay live.
  EXPECT_EQ(params.values().raw(), values);
  EXPECT_EQ(params.grads().raw(), grads);
  EXPECT_EQ(params.value(1).data<float>()[2], 8.5f);  // "b" starts at offset 6
  EXPECT_EQ(params.grad(0).data<float>()[5], -5.0f);
  EXPECT_EQ(params.device(), Device::cpu());
}

TEST(ParameterSet, ToBeforeFinalizeIsAnError) {
  ParameterSet params;
  params.add("w", {2});
  EXPECT_EQ(params.device(), Device::cpu());
  EXPECT_THROW(params.to(Device::cpu()), Error);
}

TEST(ParameterSet, FailedMoveLeavesTheSetWhereItWas) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is visible: the move would succeed";
  ParameterSet params = filled_set();
  const void* values = params.values().raw();
  // A CPU build has no CUDA; a CUDA build without a GPU cannot allocate.
  EXPECT_THROW(params.to(Device::cuda(0)), Error);
  EXPECT_EQ(params.device(), Device::cpu());
  EXPECT_EQ(params.values().raw(), values);
  EXPECT_EQ(params.value(0).data<float>()[1], 1.5f);
}

}  // namespace
}  // namespace ptune
