#include "framework/train/optimizer.h"

#include <cmath>
#include <utility>

#include "framework/ops/optimizer.h"
#include "framework/train/schedule.h"

namespace ptune::train {

AdamW::AdamW(const OptimizerOptions& options, const ParameterSet& params) : options_(options), numel_(params.numel()) {
  PTUNE_CHECK(params.finalized(), "AdamW needs a finalized parameter set");
  PTUNE_CHECK(options.beta1 >= 0.0f && options.beta1 < 1.0f, "optimizer.beta1 must be in [0, 1), got {}",
              options.beta1);
  PTUNE_CHECK(options.beta2 >= 0.0f && options.beta2 < 1.0f, "optimizer.beta2 must be in [0, 1), got {}",
              options.beta2);
  PTUNE_CHECK(options.eps >= 0.0f, "optimizer.eps must be >= 0, got {}", options.eps);
  PTUNE_CHECK(options.weight_decay >= 0.0f, "optimizer.weight_decay must be >= 0, got {}", options.weight_decay);
  bool any_decay = false, any_exempt = false;
  for (const ParameterSet::Entry& e : params.entries()) {
    if (e.shape.numel() == 0) continue;
    (e.decay == Decay::kApply ? any_decay : any_exempt) = true;
  }
  decay_rule_ = !any_exempt ? DecayRule::kAll : !any_decay ? DecayRule::kNone : DecayRule::kMask;
  const Device device = params.device();
  if (decay_rule_ == DecayRule::kMask) {
    Tensor mask = Tensor::zeros({numel_}, DType::kF32);
    float* pm = mask.data<float>();
    for (const ParameterSet::Entry& e : params.entries())
      if (e.decay == Decay::kApply)
        for (int64_t i = e.offset; i < e.offset + e.shape.numel(); ++i) pm[i] = 1.0f;
    decay_mask_ = device.is_cpu() ? mask : mask.to(device);
  }
  // Widened once here: step() allocates nothing (unless the parameters moved).
  beta1_ = widen_decimal(options.beta1);
  beta2_ = widen_decimal(options.beta2);
  eps_ = widen_decimal(options.eps);
  weight_decay_ = widen_decimal(options.weight_decay);
  exp_avg_ = Tensor::zeros({numel_}, DType::kF32, device);
  exp_avg_sq_ = Tensor::zeros({numel_}, DType::kF32, device);
}

void AdamW::follow(Device device) {
  if (exp_avg_.device() == device) return;
  // All three copies first, so a failure leaves the state where it was.
  Tensor m = exp_avg_.to(device), v = exp_avg_sq_.to(device);
  Tensor mask = decay_mask_.defined() ? decay_mask_.to(device) : Tensor();
  exp_avg_ = std::move(m);
  exp_avg_sq_ = std::move(v);
  decay_mask_ = std::move(mask);
}

void AdamW::step(ParameterSet& params, double lr) {
  PTUNE_CHECK(params.numel() == numel_, "AdamW built for {} parameter values, stepped with {}", numel_,
              params.numel());
  PTUNE_CHECK(std::isfinite(lr) && lr >= 0.0, "AdamW step with learning rate {}", lr);
  follow(params.device());
  ++steps_;
  const double beta1 = beta1_, beta2 = beta2_;
  const double t = double(steps_);
  // torch: param.mul_(1 - lr * wd); exp_avg.lerp_(grad, 1 - beta1);
  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2);
  // denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps); param.addcdiv_(exp_avg, denom, value=-lr / bc1).
  ops::AdamWScalars sc;
  sc.decay_scale = decay_rule_ == DecayRule::kNone ? 1.0f : float(1.0 - lr * weight_decay_);
  sc.w1 = float(1.0 - beta1);
  sc.b2 = float(beta2);
  sc.w2 = float(1.0 - beta2);
  sc.bc2_sqrt = float(std::sqrt(1.0 - std::pow(beta2, t)));
  sc.eps = float(eps_);
  sc.neg_step_size = float(-(lr / (1.0 - std::pow(beta1, t))));
  ops::adamw_update(params.values(), params.grads(), exp_avg_, exp_avg_sq_, decay_mask_, sc);
}

void AdamW::load_state(int64_t steps, const Tensor& exp_avg, const Tensor& exp_avg_sq) {
  PTUNE_CHECK(steps >= 0, "AdamW state with a negative step count {}", steps);
  check_tensor(exp_avg, "AdamW exp_avg", Shape{numel_});
  check_tensor(exp_avg_sq, "AdamW exp_avg_sq", Shape{numel_});
  exp_avg_.copy_from(exp_avg);
  exp_avg_sq_.copy_from(exp_avg_sq);
  steps_ = steps;
}

}  // namespace ptune::train
