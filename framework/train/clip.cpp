#include "framework/train/clip.h"

#include <cmath>

#include "framework/ops/elementwise.h"
#include "framework/ops/optimizer.h"

namespace ptune::train {

double grad_norm(const ParameterSet& params) {
  PTUNE_CHECK(params.finalized(), "gradient norm of a parameter set that is not finalized");
  return std::sqrt(ops::sum_squares(params.grads()));
}

double clip_grad_norm(ParameterSet& params, double max_norm) {
  const double norm = grad_norm(params);
  if (max_norm <= 0.0 || !is_finite(norm)) return norm;
  // torch: max_norm / (total_norm + 1e-6) on an f32 tensor is
  // reciprocal(total_norm + 1e-6) * max_norm (Tensor.__rtruediv__).
  const float coef = (1.0f / (float(norm) + 1e-6f)) * float(max_norm);
  if (coef < 1.0f) ops::scale_(params.grads(), coef);
  return norm;
}

bool all_finite(const Tensor& t) { return ops::all_finite(t); }

}  // namespace ptune::train
