// The trainable side on a GPU: ParameterSet::to, AdamW, gradient clipping,
// the finite checks and checkpoints, each against the same run on the CPU
// (the reference, itself pinned to torch by tests/train). Every test skips
// when no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "framework/core/parameters.h"
#include "framework/core/stream.h"
#include "framework/ops/optimizer.h"
#include "framework/train/clip.h"
#include "framework/train/optimizer.h"
#include "framework/train/train_state.h"
#include "cuda/cuda_test_util.h"
#include "train/train_test_util.h"

namespace ptune {
namespace {

using namespace cuda_test;  // NOLINT: the shared helpers

// Decay on "w" and "proj" but not on "bias": the update needs its per-element
// decay mask. numel 3·70 + 70 + 5·13 = 345.
ParameterSet mixed_set() {
  ParameterSet set;
  set.add("w", {3, 70}, Decay::kApply);
  set.add("bias", {70}, Decay::kExempt);
  set.add("proj", {5, 13}, Decay::kApply);
  set.finalize();
  Tensor(set.values()).copy_from(randn({set.numel()}));
  return set;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.to(Device::cpu()), cb = b.to(Device::cpu());
  return ca.nbytes() == cb.nbytes() && std::memcmp(ca.raw(), cb.raw(), ca.nbytes()) == 0;
}

TEST(CudaTrainSide, ParameterSetRoundTrip) {
  SKIP_WITHOUT_GPU();
  ParameterSet set = mixed_set();
  Tensor(set.grads()).copy_from(randn({set.numel()}));
  const Tensor values = set.values().clone(), grads = set.grads().clone();
  set.to(kGpu);
  EXPECT_EQ(set.device(), kGpu);
  EXPECT_TRUE(set.values().device().is_cuda());
  EXPECT_TRUE(set.grads().device().is_cuda());
  // Views by index come from the moved buffers.
  const size_t bias = set.index("bias");
  EXPECT_TRUE(set.value(bias).device().is_cuda());
  EXPECT_EQ(set.value(bias).shape(), Shape{70});
  EXPECT_TRUE(bitwise_equal(set.value(bias), values.slice(210, 280)));
  // A write through a GPU view lands in the flat buffer.
  const Tensor fresh = randn({70});
  set.grad(bias).copy_from(fresh);
  set.to(kGpu);  // already there: nothing moves
  set.to(Device::cpu());
  EXPECT_EQ(set.device(), Device::cpu());
  EXPECT_TRUE(bitwise_equal(set.values(), values));
  EXPECT_TRUE(bitwise_equal(set.grads().slice(0, 210), grads.slice(0, 210)));
  EXPECT_TRUE(bitwise_equal(set.grad(bias), fresh));
  set.zero_grad();
  set.to(kGpu);
  set.zero_grad();  // on the GPU
  EXPECT_EQ(train::grad_norm(set), 0.0);
}

TEST(CudaTrainSide, SumSquaresAndFiniteMatchCpu) {
  SKIP_WITHOUT_GPU();
  // One block, several, and more than the kernel's 1024 blocks of 256.
  for (int64_t n : {int64_t(1), int64_t(345), int64_t(70001), int64_t((1 << 18) * 3 + 7)}) {
    SCOPED_TRACE(n);
    const Tensor x = randn({n}, 3.0f);
    const Tensor gx = x.to(kGpu);
    const double cpu = ops::sum_squares(x), gpu = ops::sum_squares(gx);
    EXPECT_NEAR(gpu, cpu, 1e-12 * cpu);  // both in double: only the order differs
    EXPECT_EQ(ops::sum_squares(gx), gpu);  // the order is fixed by n: same bits again
    EXPECT_TRUE(ops::all_finite(gx));
    for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                      std::numeric_limits<float>::quiet_NaN()}) {
      Tensor y = x.clone();
      y.data<float>()[n / 2] = bad;
      const Tensor gy = y.to(kGpu);
      EXPECT_FALSE(ops::all_finite(gy)) << bad;
      EXPECT_FALSE(std::isfinite(ops::sum_squares(gy))) << bad;
    }
  }
  EXPECT_EQ(ops::sum_squares(Tensor::zeros({0}, DType::kF32, kGpu)), 0.0);
  EXPECT_TRUE(ops::all_finite(Tensor::zeros({0}, DType::kF32, kGpu)));
}

// Five steps of clip + AdamW on a CPU set and a GPU set from the same
// values and gradients. Gradients of stddev 2 over 345 values have a norm
// near 37, so max_norm = 5 clips every step. β1 = 0.9 takes torch's
// small-weight lerp branch (w1 = 0.1), β1 = 0.3 the other (w1 = 0.7).
TEST(CudaTrainSide, AdamWWithClippingMatchesCpuFiveSteps) {
  SKIP_WITHOUT_GPU();
  struct Case {
    float beta1, weight_decay;
    bool optimizer_before_move;  // AdamW built on the CPU set, which then moves
  };
  for (const Case& c : {Case{0.9f, 0.1f, false}, Case{0.3f, 0.05f, true}}) {
    SCOPED_TRACE(c.beta1);
    train::OptimizerOptions options;
    options.beta1 = c.beta1;
    options.weight_decay = c.weight_decay;
    ParameterSet cpu = mixed_set(), gpu;
    gpu.add("w", {3, 70}, Decay::kApply);
    gpu.add("bias", {70}, Decay::kExempt);
    gpu.add("proj", {5, 13}, Decay::kApply);
    gpu.finalize();
    Tensor(gpu.values()).copy_from(cpu.values());
    train::AdamW cpu_opt(options, cpu);
    std::optional<train::AdamW> gpu_opt;  // built before or after the move
    if (c.optimizer_before_move) gpu_opt.emplace(options, gpu);
    gpu.to(kGpu);
    if (!c.optimizer_before_move) gpu_opt.emplace(options, gpu);
    // Built on the GPU set, the state is on the GPU from the start; built
    // before the move, it follows the set at the first step.
    EXPECT_EQ(gpu_opt->exp_avg().device().is_cuda(), !c.optimizer_before_move);

    const double lrs[5] = {1e-2, 5e-3, 2e-2, 1e-3, 1e-2};
    for (int k = 0; k < 5; ++k) {
      SCOPED_TRACE(k);
      const Tensor g = randn({cpu.numel()}, 2.0f);
      Tensor(cpu.grads()).copy_from(g);
      Tensor(gpu.grads()).copy_from(g);
      const double cpu_norm = train::clip_grad_norm(cpu, 5.0), gpu_norm = train::clip_grad_norm(gpu, 5.0);
      EXPECT_GT(cpu_norm, 5.0);
      EXPECT_NEAR(gpu_norm, cpu_norm, 1e-12 * cpu_norm);
      EXPECT_TRUE(train::all_finite(gpu.grads()));
      EXPECT_LE(rel_err(gpu.grads().to(Device::cpu()), cpu.grads()), 1e-6);
      // Same clipped gradients on both sides, so the steps compare the
      // update alone (the norms may differ in the last bit of a double).
      Tensor(gpu.grads()).copy_from(cpu.grads());
      cpu_opt.step(cpu, lrs[k]);
      gpu_opt->step(gpu, lrs[k]);
      EXPECT_LE(rel_err(gpu.values().to(Device::cpu()), cpu.values()), 1e-6);
    }
    EXPECT_TRUE(gpu_opt->exp_avg().device().is_cuda());
    EXPECT_EQ(gpu_opt->steps(), 5);
    EXPECT_LE(rel_err(gpu_opt->exp_avg().to(Device::cpu()), cpu_opt.exp_avg()), 1e-6);
    EXPECT_LE(rel_err(gpu_opt->exp_avg_sq().to(Device::cpu()), cpu_opt.exp_avg_sq()), 1e-6);
    // Beyond the 1e-6 contract: the kernel rounds every operation as the
    // CPU does (ops/cuda/optimizer_cuda.cu), so the results are the same bits.
    EXPECT_TRUE(bitwise_equal(gpu.values(), cpu.values()));
    EXPECT_TRUE(bitwise_equal(gpu_opt->exp_avg(), cpu_opt.exp_avg()));
    EXPECT_TRUE(bitwise_equal(gpu_opt->exp_avg_sq(), cpu_opt.exp_avg_sq()));
  }
}

TEST(CudaTrainSide, NonFiniteGradientsAreLeftForTheCallerToSkip) {
  SKIP_WITHOUT_GPU();
  ParameterSet set = mixed_set();
  set.to(kGpu);
  Tensor g = randn({set.numel()});
  g.data<float>()[100] = std::numeric_limits<float>::quiet_NaN();
  Tensor(set.grads()).copy_from(g);
  EXPECT_FALSE(train::all_finite(set.grads()));
  EXPECT_FALSE(train::is_finite(train::clip_grad_norm(set, 1e-3)));
  const Tensor after = set.grads().to(Device::cpu());
  EXPECT_EQ(after.data<float>()[0], g.data<float>()[0]);  // not scaled
}

class CudaCheckpoint : public train::testing::ScratchDir {};

TEST_F(CudaCheckpoint, SavedFromGpuReloadsOnCpuAndGpu) {
  SKIP_WITHOUT_GPU();
  ParameterSet gpu = mixed_set();
  gpu.to(kGpu);
  train::OptimizerOptions options;
  options.weight_decay = 0.1f;
  train::AdamW gpu_opt(options, gpu);
  for (int k = 0; k < 2; ++k) {
    Tensor(gpu.grads()).copy_from(randn({gpu.numel()}));
    gpu_opt.step(gpu, 1e-2);
  }
  train::TrainState state;
  state.step = 2;
  train::save_checkpoint(path("ckpt"), gpu, gpu_opt, state);

  ParameterSet cpu = mixed_set();  // other values, overwritten by the load
  train::AdamW cpu_opt(options, cpu);
  EXPECT_EQ(train::load_checkpoint(path("ckpt"), cpu, cpu_opt).step, 2);
  EXPECT_TRUE(bitwise_equal(cpu.values(), gpu.values()));
  EXPECT_TRUE(bitwise_equal(cpu_opt.exp_avg(), gpu_opt.exp_avg()));
  EXPECT_TRUE(bitwise_equal(cpu_opt.exp_avg_sq(), gpu_opt.exp_avg_sq()));
  EXPECT_EQ(cpu_opt.steps(), 2);

  // And back onto a GPU set: values and state copied onto the device.
  ParameterSet again = mixed_set();
  again.to(kGpu);
  train::AdamW again_opt(options, again);
  train::load_checkpoint(path("ckpt"), again, again_opt);
  EXPECT_TRUE(again.values().device().is_cuda());
  EXPECT_TRUE(again_opt.exp_avg().device().is_cuda());
  EXPECT_TRUE(bitwise_equal(again.values(), gpu.values()));
  EXPECT_TRUE(bitwise_equal(again_opt.exp_avg_sq(), gpu_opt.exp_avg_sq()));
}

}  // namespace
}  // namespace ptune
