#include <gtest/gtest.h>

#include <cmath>

#include "framework/core/arena.h"
#include "framework/core/rng.h"
#include "framework/core/tensor.h"

namespace ptune {
namespace {

TEST(Tensor, ViewSliceSelectShareStorage) {
  Tensor t = Tensor::zeros({4, 3}, DType::kF32);
  for (int i = 0; i < 12; ++i) t.data<float>()[i] = float(i);
  Tensor rows = t.slice(1, 3);
  EXPECT_EQ(rows.shape(), Shape({2, 3}));
  EXPECT_EQ(rows.data<float>()[0], 3.0f);
  Tensor row = t.select(2);
  EXPECT_EQ(row.shape(), Shape({3}));
  EXPECT_EQ(row.data<float>()[1], 7.0f);
  row.data<float>()[1] = -1.0f;
  EXPECT_EQ(t.view({12}).data<float>()[7], -1.0f);
  EXPECT_THROW(t.view({5, 3}), Error);
  EXPECT_THROW(t.slice(2, 5), Error);
  EXPECT_THROW(t.data<int32_t>(), Error);
}

TEST(Tensor, DtypeConversionsRoundTrip) {
  Tensor t = Tensor::empty({5}, DType::kF32);
  const float values[5] = {0.0f, 1.0f, -2.5f, 65504.0f, 1.0e-6f};
  for (int i = 0; i < 5; ++i) t.data<float>()[i] = values[i];
  Tensor h = t.to(DType::kF16).to(DType::kF32);
  Tensor b = t.to(DType::kBF16).to(DType::kF32);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(h.data<float>()[i], values[i]);
    EXPECT_NEAR(b.data<float>()[i], values[i], std::fabs(values[i]) / 128);
  }
  EXPECT_NEAR(h.data<float>()[4], 1.0e-6f, 6.0e-8f);  // an f16 subnormal
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);   // tie rounds to even
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(70000.0f))));
}

// Large enough for the threaded path: every element, each dtype pair as
// the scalar conversions do it.
TEST(Tensor, LargeConversionsMatchTheScalarOnes) {
  const int64_t n = 100003;
  Tensor f = Tensor::empty({n}, DType::kF32);
  Rng(5).fill_normal(f, 0.0f, 1000.0f);
  const Tensor b = f.to(DType::kBF16), back = b.to(DType::kF32), i32 = f.to(DType::kI32);
  const Tensor i64 = i32.to(DType::kI64), h = i64.to(DType::kF16);
  for (int64_t i = 0; i < n; ++i) {
    const float v = f.data<float>()[i];
    ASSERT_EQ(static_cast<const uint16_t*>(b.raw())[i], f32_to_bf16(v)) << i;
    ASSERT_EQ(back.data<float>()[i], bf16_to_f32(f32_to_bf16(v))) << i;
    ASSERT_EQ(i32.data<int32_t>()[i], int32_t(v)) << i;
    ASSERT_EQ(i64.data<int64_t>()[i], int64_t(int32_t(v))) << i;
    ASSERT_EQ(static_cast<const uint16_t*>(h.raw())[i], f32_to_f16(float(int32_t(v)))) << i;
  }
}

TEST(Arena, SteadyStateAllocatesNothing) {
  Arena arena;
  auto step = [&] {
    for (int i = 0; i < 10; ++i) arena.alloc({1000, 300 + i});
    arena.reset();
  };
  step();
  step();  // folds the blocks of the first step into one
  const size_t after_warmup = arena.system_allocations();
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(arena.system_allocations(), after_warmup);
  EXPECT_GE(arena.peak_bytes(), size_t(10) * 1000 * 300 * 4);
}

// Per-layer scratch rewound after each layer: the bytes are reused (the
// same address again), the peak is one layer's scratch over what stays,
// tensors from before the mark keep their bytes, and the steady state still
// allocates nothing, also when the first step grew the arena across blocks.
TEST(Arena, RewindReusesScratchAndKeepsThePeakAtOneLayer) {
  Arena arena(Device::cpu(), 4096);
  auto step = [&] {
    Tensor stays = arena.alloc({1000});
    stays.data<float>()[999] = 7.0f;
    void* first = nullptr;
    for (int layer = 0; layer < 6; ++layer) {
      const Arena::Mark m = arena.mark();
      Tensor t = arena.alloc({5000});
      t.data<float>()[0] = float(layer);
      if (layer == 0) first = t.raw();
      EXPECT_EQ(t.raw(), first) << "layer " << layer << " did not reuse the scratch";
      arena.rewind(m);
    }
    EXPECT_EQ(stays.data<float>()[999], 7.0f);
    EXPECT_EQ(arena.used_bytes(), 4096u);  // 4000 bytes, rounded up to 256
    arena.reset();
  };
  step();  // grows: the scratch did not fit the 4 KiB block
  step();  // folded into one block of the peak
  const size_t after_warmup = arena.system_allocations();
  for (int i = 0; i < 3; ++i) step();
  EXPECT_EQ(arena.system_allocations(), after_warmup);
  EXPECT_EQ(arena.peak_bytes(), 4096u + 20224u);  // one layer's scratch (20000 → 20224) over what stays

  Arena other;
  const Arena::Mark late = [&] {
    other.alloc({10});
    return other.mark();
  }();
  other.reset();
  EXPECT_THROW(other.rewind(late), Error);  // a mark from before the reset
}

TEST(Rng, PhiloxKnownAnswer) {
  // Random123's kat_vectors: philox4x32_10, counter 0, key 0.
  const auto w = philox4x32(0, 0, 0);
  EXPECT_EQ(w[0], 0x6627e8d5u);
  EXPECT_EQ(w[1], 0xe169c58du);
  EXPECT_EQ(w[2], 0xbc57ac4cu);
  EXPECT_EQ(w[3], 0x9b00dbd8u);
}

TEST(Rng, NormalHasRightMoments) {
  Rng rng(42);
  Tensor t = Tensor::empty({200000}, DType::kF32);
  rng.fill_normal(t, 1.0f, 2.0f);
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    sum += t.data<float>()[i];
    sq += double(t.data<float>()[i]) * t.data<float>()[i];
  }
  const double mean = sum / double(t.numel());
  const double var = sq / double(t.numel()) - mean * mean;
  EXPECT_NEAR(mean, 1.0, 0.02);
  EXPECT_NEAR(var, 4.0, 0.05);
  EXPECT_EQ(rng.offset(), uint64_t(2 * t.numel()));
}

// Value i of a fill is philox_uniform(seed, offset + i) (two per normal),
// whatever the offset's alignment to Philox's 4-word blocks and however the
// threads split the range: the contract the GPU's dropout and the
// checkpointed (seed, offset) rely on.
TEST(Rng, FillsArePhiloxUniformsAtTheirOffsets) {
  Rng rng(7, 3);  // offset 3: the first value is a block's last word
  Tensor u = Tensor::empty({1001}, DType::kF32), z = Tensor::empty({501}, DType::kF32);
  rng.fill_uniform(u, -2.0f, 3.0f);
  rng.fill_normal(z, 0.5f, 2.0f);
  // Near, not equal: the compiler may fuse the affine maps differently here
  // (a wrong index is off by O(1)).
  for (int64_t i = 0; i < u.numel(); ++i)
    ASSERT_NEAR(u.data<float>()[i], -2.0f + 5.0f * philox_uniform(7, 3 + uint64_t(i)), 1e-6f) << i;
  const uint64_t base = 3 + 1001;
  for (int64_t i = 0; i < z.numel(); ++i) {
    const float u1 = 1.0f - philox_uniform(7, base + 2 * uint64_t(i));
    const float u2 = philox_uniform(7, base + 2 * uint64_t(i) + 1);
    const float want = 0.5f + 2.0f * std::sqrt(-2.0f * std::log(u1)) * std::cos(6.28318530718f * u2);
    ASSERT_NEAR(z.data<float>()[i], want, 1e-5f * (1.0f + std::fabs(want))) << i;
  }
  EXPECT_EQ(rng.offset(), base + 2 * 501);
}

}  // namespace
}  // namespace ptune

#include "framework/core/parameters.h"

namespace ptune {
namespace {

TEST(ParameterSet, ViewsShareTheFlatBuffers) {
  ParameterSet params;
  const size_t a = params.add("a", {2, 3});
  const size_t b = params.add("b.bias", {4}, Decay::kExempt);
  EXPECT_THROW(params.add("a", {1}), Error);
  EXPECT_THROW(params.value(a), Error);
  params.finalize();
  EXPECT_EQ(params.numel(), 10);
  params.value(b).data<float>()[1] = 5.0f;
  EXPECT_EQ(params.values().data<float>()[7], 5.0f);
  params.grad(a).data<float>()[0] = 1.0f;
  EXPECT_EQ(params.grads().data<float>()[0], 1.0f);
  params.zero_grad();
  EXPECT_EQ(params.grad(a).data<float>()[0], 0.0f);
  EXPECT_EQ(params.index("b.bias"), b);
  EXPECT_EQ(params.entries()[b].decay, Decay::kExempt);
  EXPECT_THROW(params.add("late", {1}), Error);
}

}  // namespace
}  // namespace ptune
