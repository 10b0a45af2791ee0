// Row-major GEMM on raw pointers, the one place ops call BLAS:
// C (M, N) = alpha · op(A) · op(B) + beta · C, op(X) = X or Xᵀ.
#pragma once

#include <cstdint>

namespace ptune::ops::cpu {

enum class Trans : uint8_t { kNo, kYes };

void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace ptune::ops::cpu
