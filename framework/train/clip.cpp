#include "framework/train/clip.h"

#include <array>
#include <cmath>

namespace ptune::train {

namespace {

// Sum of squares over kBlocks equal ranges, each summed in order by one
// thread, then the partials added in order: deterministic, no allocation.
double sum_of_squares(const float* x, int64_t n) {
  constexpr int kBlocks = 64;
  std::array<double, kBlocks> partial{};
#pragma omp parallel for schedule(static)
  for (int b = 0; b < kBlocks; ++b) {
    const int64_t begin = n * b / kBlocks, end = n * (b + 1) / kBlocks;
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) s += double(x[i]) * double(x[i]);
    partial[size_t(b)] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace

double grad_norm(const ParameterSet& params) {
  PTUNE_CHECK(params.finalized(), "gradient norm of a parameter set that is not finalized");
  const Tensor& g = params.grads();
  PTUNE_CHECK(g.device().is_cpu(), "gradient norm on the CPU; gradients are on {}", g.device().str());
  return std::sqrt(sum_of_squares(g.data<float>(), g.numel()));
}

double clip_grad_norm(ParameterSet& params, double max_norm) {
  const double norm = grad_norm(params);
  if (max_norm <= 0.0 || !is_finite(norm)) return norm;
  // torch: max_norm / (total_norm + 1e-6) on an f32 tensor is
  // reciprocal(total_norm + 1e-6) * max_norm (Tensor.__rtruediv__).
  const float coef = (1.0f / (float(norm) + 1e-6f)) * float(max_norm);
  if (coef < 1.0f) {
    float* g = params.grads().data<float>();
    const int64_t n = params.numel();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) g[i] *= coef;
  }
  return norm;
}

bool all_finite(const Tensor& t) {
  PTUNE_CHECK(t.device().is_cpu(), "finite check on the CPU; tensor is on {}", t.device().str());
  const float* x = t.data<float>();
  const int64_t n = t.numel();
  bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok)
  for (int64_t i = 0; i < n; ++i) ok = ok && std::isfinite(x[i]);
  return ok;
}

}  // namespace ptune::train
