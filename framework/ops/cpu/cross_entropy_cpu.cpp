#include <cmath>

#include "framework/ops/cross_entropy.h"
#include "framework/ops/dispatch.h"

namespace ptune::ops {

int64_t cross_entropy_forward(const Tensor& losses, const Tensor& lse, const Tensor& logits, const Tensor& targets) {
  PTUNE_ROUTE(logits, cross_entropy_forward, losses, lse, logits, targets);
  const int64_t v = logits.size(-1), n = logits.numel() / v;
  PTUNE_CHECK(targets.numel() == n && losses.numel() == n && lse.numel() == n,
              "cross_entropy_forward: logits {} targets {}", logits.shape().str(), targets.shape().str());
  const float* pl = logits.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  float* ploss = losses.data<float>();
  float* plse = lse.data<float>();
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    PTUNE_CHECK(pt[i] == kIgnoreIndex || (pt[i] >= 0 && pt[i] < v), "cross_entropy: target {} at row {} outside [0, {})",
                pt[i], i, v);
    count += pt[i] != kIgnoreIndex;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float* row = pl + i * v;
    float mx = row[0];
    for (int64_t j = 1; j < v; ++j) mx = std::max(mx, row[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < v; ++j) sum += std::exp(double(row[j] - mx));
    plse[i] = mx + float(std::log(sum));
    ploss[i] = pt[i] == kIgnoreIndex ? 0.0f : plse[i] - row[pt[i]];
  }
  return count;
}

void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse, const Tensor& targets,
                            float scale) {
  PTUNE_ROUTE(logits, cross_entropy_backward, dlogits, logits, lse, targets, scale);
  const int64_t v = logits.size(-1), n = logits.numel() / v;
  const float* pl = logits.data<float>();
  const float* plse = lse.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  float* pd = dlogits.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    if (pt[i] == kIgnoreIndex) continue;
    const float* row = pl + i * v;
    float* d = pd + i * v;
    for (int64_t j = 0; j < v; ++j) d[j] += scale * std::exp(row[j] - plse[i]);
    d[pt[i]] -= scale;
  }
}

}  // namespace ptune::ops
