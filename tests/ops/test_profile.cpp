// `ptune bench --profile` on the CPU: every public op is one row with its
// call count, an op run inside another counts in the outer one only (so
// the rows add up to the step), and nothing is recorded while disabled.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "framework/ops/layernorm.h"
#include "framework/ops/profile.h"
#include "gradcheck.h"

namespace ptune {
namespace {

const ops::OpProfile::Row* find(const std::vector<ops::OpProfile::Row>& rows, const std::string& op) {
  const auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return r.op == op; });
  return it == rows.end() ? nullptr : &*it;
}

TEST(OpProfile, CpuOpsAreRowsAndNestedOpsCountInTheOuterOne) {
  const int64_t n = 8, c = 32;
  const Tensor x = testing::random_tensor({n, c}, 1), a = testing::random_tensor({n, c}, 2);
  const Tensor w = testing::random_tensor({c}, 3), b = testing::random_tensor({c}, 4);
  Tensor y = Tensor::empty({n, c}, DType::kF32), sum = Tensor::empty({n, c}, DType::kF32);
  Tensor mean = Tensor::empty({n}, DType::kF32), rstd = Tensor::empty({n}, DType::kF32);
  auto run = [&] {
    // residual_norm_forward is add_forward then norm_forward on the CPU.
    ops::residual_norm_forward(ops::NormKind::kLayerNorm, y, sum, mean, rstd, a, x, w, b, 1e-5f);
    ops::norm_forward(ops::NormKind::kLayerNorm, y, mean, rstd, x, w, b, 1e-5f);
    ops::norm_forward(ops::NormKind::kLayerNorm, y, mean, rstd, x, w, b, 1e-5f);
  };

  ops::OpProfile::enable(true);
  run();
  const std::vector<ops::OpProfile::Row> rows = ops::OpProfile::collect();
  ops::OpProfile::enable(false);
  ASSERT_EQ(rows.size(), 2u);
  const ops::OpProfile::Row* fused = find(rows, "residual_norm_forward");
  const ops::OpProfile::Row* norm = find(rows, "norm_forward");
  ASSERT_TRUE(fused && norm);
  EXPECT_EQ(fused->calls, 1);
  EXPECT_EQ(norm->calls, 2);  // not 3: the one inside residual_norm_forward is its time
  EXPECT_EQ(find(rows, "add_forward"), nullptr);
  EXPECT_GE(fused->ms, 0.0);
  EXPECT_GE(norm->ms, 0.0);

  run();  // disabled: nothing recorded
  EXPECT_TRUE(ops::OpProfile::collect().empty());
}

}  // namespace
}  // namespace ptune
