// Comparison against a reference tensor (golden fixtures, CPU vs other
// paths): max |got − want| ≤ tol · max(1, max|want|), NaN always fails; the
// message names the worst element.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "framework/core/tensor.h"

namespace ptune::testing {

inline void expect_close(const std::string& what, const Tensor& got, const Tensor& want, double tol) {
  ASSERT_EQ(got.numel(), want.numel()) << what;
  double scale = 1.0, worst = 0.0;
  int64_t at = 0;
  for (int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, double(std::fabs(want.data<float>()[i])));
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double d = std::fabs(double(got.data<float>()[i]) - want.data<float>()[i]);
    if (!(d <= worst)) {  // NaN sticks
      worst = d;
      at = i;
    }
  }
  EXPECT_LE(worst, tol * scale) << what << ": worst element " << at << " got " << got.data<float>()[at] << " want "
                                << want.data<float>()[at];
}

}  // namespace ptune::testing
