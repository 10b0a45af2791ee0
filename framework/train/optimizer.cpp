#include "framework/train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "framework/train/schedule.h"

namespace ptune::train {

namespace {

struct AdamWScalars {
  float decay_scale;
  bool lerp_small;  // torch's lerp: weight < 0.5 ? self + w·(end − self) : end + (w − 1)·(end − self)
  float w1, b2, w2, bc2_sqrt, eps, neg_step_size;
};

// torch's CPU kernels are built with FMA (AVX2/AVX-512) and so fuse the
// lerp and the addcmul; __builtin_fmaf reproduces them to the bit, and
// fp-contract=off keeps the compiler from fusing anything else (torch
// rounds p·(1 − lr·wd) before the addcdiv). On x86-64 the "fma" clone
// makes the fma one instruction where the CPU has it (a libm call
// otherwise, same result).
#if defined(__x86_64__)
#define PTUNE_ADAMW_ATTRIBUTES __attribute__((target_clones("fma", "default"), optimize("fp-contract=off")))
#else
#define PTUNE_ADAMW_ATTRIBUTES __attribute__((optimize("fp-contract=off")))
#endif

PTUNE_ADAMW_ATTRIBUTES void adamw_range(int64_t begin, int64_t end, bool decay, const AdamWScalars& sc,
                                        float* __restrict p, const float* __restrict g, float* __restrict m,
                                        float* __restrict v) {
  const float scale = decay ? sc.decay_scale : 1.0f;
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    // exp_avg.lerp_(grad, w1), fused.
    const float mi = sc.lerp_small ? __builtin_fmaf(sc.w1, gi - m[i], m[i])
                                   : __builtin_fmaf(sc.w1 - 1.0f, gi - m[i], gi);
    // exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=w2): (v·β2) + (w2·g)·g, fused.
    const float vi = __builtin_fmaf(sc.w2 * gi, gi, v[i] * sc.b2);
    const float denom = __builtin_sqrtf(vi) / sc.bc2_sqrt + sc.eps;
    m[i] = mi;
    v[i] = vi;
    // param.mul_(1 − lr·wd), then addcdiv_: p + (−step_size·m) / denom.
    const float decayed = p[i] * scale;
    p[i] = decayed + sc.neg_step_size * mi / denom;
  }
}

#undef PTUNE_ADAMW_ATTRIBUTES

}  // namespace

AdamW::AdamW(const OptimizerOptions& options, const ParameterSet& params) : options_(options), numel_(params.numel()) {
  PTUNE_CHECK(params.finalized(), "AdamW needs a finalized parameter set");
  PTUNE_CHECK(params.values().device().is_cpu(), "AdamW runs on the CPU; parameters are on {}",
              params.values().device().str());
  PTUNE_CHECK(options.beta1 >= 0.0f && options.beta1 < 1.0f, "optimizer.beta1 must be in [0, 1), got {}",
              options.beta1);
  PTUNE_CHECK(options.beta2 >= 0.0f && options.beta2 < 1.0f, "optimizer.beta2 must be in [0, 1), got {}",
              options.beta2);
  PTUNE_CHECK(options.eps >= 0.0f, "optimizer.eps must be >= 0, got {}", options.eps);
  PTUNE_CHECK(options.weight_decay >= 0.0f, "optimizer.weight_decay must be >= 0, got {}", options.weight_decay);
  for (const ParameterSet::Entry& e : params.entries()) {
    const int64_t end = e.offset + e.shape.numel();
    const bool decay = e.decay == Decay::kApply;
    if (end == e.offset) continue;
    if (!segments_.empty() && segments_.back().decay == decay && segments_.back().end == e.offset)
      segments_.back().end = end;
    else
      segments_.push_back({e.offset, end, decay});
  }
  // Widened once here: step() allocates nothing.
  beta1_ = widen_decimal(options.beta1);
  beta2_ = widen_decimal(options.beta2);
  eps_ = widen_decimal(options.eps);
  weight_decay_ = widen_decimal(options.weight_decay);
  exp_avg_ = Tensor::zeros({numel_}, DType::kF32);
  exp_avg_sq_ = Tensor::zeros({numel_}, DType::kF32);
}

void AdamW::step(ParameterSet& params, double lr) {
  PTUNE_CHECK(params.numel() == numel_, "AdamW built for {} parameter values, stepped with {}", numel_,
              params.numel());
  PTUNE_CHECK(std::isfinite(lr) && lr >= 0.0, "AdamW step with learning rate {}", lr);
  ++steps_;
  const double beta1 = beta1_, beta2 = beta2_;
  const double t = double(steps_);
  // torch: param.mul_(1 - lr * wd); exp_avg.lerp_(grad, 1 - beta1);
  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2);
  // denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps); param.addcdiv_(exp_avg, denom, value=-lr / bc1).
  const float decay_scale = float(1.0 - lr * weight_decay_);
  const float w1 = float(1.0 - beta1);
  const float b2 = float(beta2);
  const float w2 = float(1.0 - beta2);
  const float bc2_sqrt = float(std::sqrt(1.0 - std::pow(beta2, t)));
  const float eps = float(eps_);
  const float neg_step_size = float(-(lr / (1.0 - std::pow(beta1, t))));

  float* p = params.values().data<float>();
  const float* g = params.grads().data<float>();
  float* m = exp_avg_.data<float>();
  float* v = exp_avg_sq_.data<float>();
  const AdamWScalars sc{decay_scale, w1 < 0.5f, w1, b2, w2, bc2_sqrt, eps, neg_step_size};
  // Blocks of kBlock elements within each segment, spread over the threads.
  constexpr int64_t kBlock = 1 << 14;
#pragma omp parallel
  for (const Segment& s : segments_) {
    const int64_t blocks = (s.end - s.begin + kBlock - 1) / kBlock;
#pragma omp for schedule(static) nowait
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = s.begin + b * kBlock;
      adamw_range(begin, std::min(s.end, begin + kBlock), s.decay, sc, p, g, m, v);
    }
  }
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
