// AdamW over a ParameterSet, step for step what torch.optim.AdamW does
// (amsgrad off, maximize off):
//
//   p ← p · (1 − lr·wd)                      decoupled decay, only Decay::kApply
//   m ← m + (1 − β1)·(g − m)                 (torch's lerp)
//   v ← v·β2 + (1 − β2)·g·g
//   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
//
// The scalars are formed in double from the options widened as decimals
// (0.999f → 0.999, what a Python recipe holds), then rounded to f32 as
// torch rounds Python floats into an f32 kernel; the element math is f32,
// with the two fused multiply-adds torch's FMA-built CPU kernels do, so the
// result is torch's to the bit.
// State m, v is f32 and flat like the ParameterSet's buffers, so a step is
// one pass over three flat buffers and allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/core/parameters.h"
#include "framework/core/tensor.h"
#include "framework/train/train_config.h"

namespace ptune::train {

class AdamW {
 public:
  // Sizes m and v (zeroed) for `params`, which must be finalized; the
  // entries' Decay flags are captured here.
  AdamW(const OptimizerOptions& options, const ParameterSet& params);

  // One update from params.grads() with learning rate `lr` (the
  // schedule's value for this step). Gradients are left as they are.
  void step(ParameterSet& params, double lr);

  int64_t steps() const { return steps_; }
  const OptimizerOptions& options() const { return options_; }
  const Tensor& exp_avg() const { return exp_avg_; }        // m (numel)
  const Tensor& exp_avg_sq() const { return exp_avg_sq_; }  // v (numel)

  // Restores a saved state (flat f32 buffers of the set's numel).
  void load_state(int64_t steps, const Tensor& exp_avg, const Tensor& exp_avg_sq);

 private:
  // A run of consecutive elements with one Decay flag ([begin, end) into
  // the flat buffers); adjacent entries with the same flag are merged.
  struct Segment {
    int64_t begin, end;
    bool decay;
  };

  OptimizerOptions options_;
  double beta1_, beta2_, eps_, weight_decay_;  // the options as Python holds them
  int64_t numel_;
  std::vector<Segment> segments_;
  int64_t steps_ = 0;
  Tensor exp_avg_, exp_avg_sq_;
};

}  // namespace ptune::train
