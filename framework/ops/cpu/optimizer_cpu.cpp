// CPU reference of ops/optimizer.h: the AdamW element update (torch's
// CPU kernel to the bit), the deterministic sum of squares and the finite
// check. Updates in place; nothing accumulates across calls.
#include <algorithm>
#include <array>
#include <cmath>

#include "framework/ops/dispatch.h"
#include "framework/ops/optimizer.h"

namespace ptune::ops {

namespace {

void check_flat_f32(const Tensor& t, int64_t n, const char* what, const char* op) {
  PTUNE_CHECK(t.defined() && t.dtype() == DType::kF32 && t.numel() == n, "{}: {} must be f32 of {} values, got {} {}",
              op, what, n, dtype_name(t.dtype()), t.shape().str());
  PTUNE_CHECK(t.device() == Device::cpu(), "{}: {} lives on {}, the parameters on the CPU", op, what,
              t.device().str());
}

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

// Elements [begin, end); decay == nullptr decays every element.
PTUNE_ADAMW_ATTRIBUTES void adamw_range(int64_t begin, int64_t end, const AdamWScalars& sc, float* __restrict p,
                                        const float* __restrict g, float* __restrict m, float* __restrict v,
                                        const float* __restrict decay) {
  // torch's lerp: weight < 0.5 ? self + w·(end − self) : end + (w − 1)·(end − self).
  const bool lerp_small = sc.w1 < 0.5f;
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    // exp_avg.lerp_(grad, w1), fused.
    const float mi = lerp_small ? __builtin_fmaf(sc.w1, gi - m[i], m[i]) : __builtin_fmaf(sc.w1 - 1.0f, gi - m[i], gi);
    // exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=w2): (v·β2) + (w2·g)·g, fused.
    const float vi = __builtin_fmaf(sc.w2 * gi, gi, v[i] * sc.b2);
    const float denom = __builtin_sqrtf(vi) / sc.bc2_sqrt + sc.eps;
    m[i] = mi;
    v[i] = vi;
    // param.mul_(1 − lr·wd), then addcdiv_: p + (−step_size·m) / denom.
    const float scale = decay == nullptr || decay[i] != 0.0f ? sc.decay_scale : 1.0f;
    const float decayed = p[i] * scale;
    p[i] = decayed + sc.neg_step_size * mi / denom;
  }
}

#undef PTUNE_ADAMW_ATTRIBUTES

}  // namespace

void adamw_update(const Tensor& params, const Tensor& grads, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const Tensor& decay_mask, const AdamWScalars& scalars) {
  PTUNE_ROUTE(params, adamw_update, params, grads, exp_avg, exp_avg_sq, decay_mask, scalars);
  const char* op = "adamw_update";
  const int64_t n = params.numel();
  check_flat_f32(params, n, "params", op);
  check_flat_f32(grads, n, "grads", op);
  check_flat_f32(exp_avg, n, "exp_avg", op);
  check_flat_f32(exp_avg_sq, n, "exp_avg_sq", op);
  if (decay_mask.defined()) check_flat_f32(decay_mask, n, "decay_mask", op);
  float* p = params.data<float>();
  const float* g = grads.data<float>();
  float* m = exp_avg.data<float>();
  float* v = exp_avg_sq.data<float>();
  const float* decay = decay_mask.defined() ? decay_mask.data<float>() : nullptr;
  // Blocks of kBlock elements spread over the threads.
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b)
    adamw_range(b * kBlock, std::min(n, (b + 1) * kBlock), scalars, p, g, m, v, decay);
}

double sum_squares(const Tensor& x) {
  PTUNE_ROUTE(x, sum_squares, x);
  PTUNE_CHECK(x.dtype() == DType::kF32, "sum_squares: x must be f32, got {}", dtype_name(x.dtype()));
  const float* px = x.data<float>();
  const int64_t n = x.numel();
  // kBlocks equal ranges, each summed in order by one thread, then the
  // partials added in order: the same bits whatever the thread count.
  constexpr int kBlocks = 64;
  std::array<double, kBlocks> partial{};
#pragma omp parallel for schedule(static)
  for (int b = 0; b < kBlocks; ++b) {
    const int64_t begin = n * b / kBlocks, end = n * (b + 1) / kBlocks;
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) s += double(px[i]) * double(px[i]);
    partial[size_t(b)] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

bool all_finite(const Tensor& x) {
  PTUNE_ROUTE(x, all_finite, x);
  PTUNE_CHECK(x.dtype() == DType::kF32, "all_finite: x must be f32, got {}", dtype_name(x.dtype()));
  const float* px = x.data<float>();
  const int64_t n = x.numel();
  bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok)
  for (int64_t i = 0; i < n; ++i) ok = ok && std::isfinite(px[i]);
  return ok;
}

}  // namespace ptune::ops
