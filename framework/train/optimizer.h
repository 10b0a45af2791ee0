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
// State m, v is f32 and flat like the ParameterSet's buffers, on the
// parameters' device, so a step is one pass (ops::adamw_update, on the CPU
// or the GPU) over the flat buffers and allocates nothing.
#pragma once

#include <cstdint>

#include "framework/core/parameters.h"
#include "framework/core/tensor.h"
#include "framework/train/train_config.h"

namespace ptune::train {

class AdamW {
 public:
  // Sizes m and v (zeroed) for `params`, which must be finalized, on the
  // parameters' device; the entries' Decay flags are captured here. Should
  // the parameters move afterwards (ParameterSet::to), the next step()
  // moves the state after them.
  AdamW(const OptimizerOptions& options, const ParameterSet& params);

  // One update from params.grads() with learning rate `lr` (the
  // schedule's value for this step). Gradients are left as they are.
  // On a GPU the update is queued on the device's default stream.
  void step(ParameterSet& params, double lr);

  int64_t steps() const { return steps_; }
  const OptimizerOptions& options() const { return options_; }
  const Tensor& exp_avg() const { return exp_avg_; }        // m (numel)
  const Tensor& exp_avg_sq() const { return exp_avg_sq_; }  // v (numel)

  // Restores a saved state (flat f32 buffers of the set's numel, on any
  // device: they are copied onto the state's).
  void load_state(int64_t steps, const Tensor& exp_avg, const Tensor& exp_avg_sq);

 private:
  // Moves m, v and the decay mask to `device` (nothing when there already).
  void follow(Device device);

  OptimizerOptions options_;
  double beta1_, beta2_, eps_, weight_decay_;  // the options as Python holds them
  int64_t numel_;
  // How decay applies: to every element (mask undefined, scale as given),
  // to none (mask undefined, scale 1), or per element (mask (numel) f32,
  // 1 where the entry's Decay is kApply).
  enum class DecayRule : uint8_t { kAll, kNone, kMask };
  DecayRule decay_rule_;
  Tensor decay_mask_;
  int64_t steps_ = 0;
  Tensor exp_avg_, exp_avg_sq_;
};

}  // namespace ptune::train
