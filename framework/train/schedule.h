// Learning-rate schedules exactly as transformers' get_constant_schedule_
// with_warmup, get_linear_schedule_with_warmup and get_cosine_schedule_
// with_warmup (num_cycles 0.5) driven by torch's LambdaLR.
//
// Steps count optimizer steps: lr_at(k) is the rate optimizer step k
// (0-based) uses, i.e. what the Trainer's optimizer holds after k calls of
// scheduler.step(). Rates are doubles, as Python's are.
#pragma once

#include <cstdint>

#include "framework/train/train_config.h"

namespace ptune::train {

// A float option as the double its shortest decimal spells (0.1f → 0.1):
// what the same recipe value is in Python, so products such as
// total_steps · warmup_ratio round as they do there.
double widen_decimal(float x);

// TrainingArguments.get_warmup_steps: warmup_steps when > 0, else
// ceil(total_steps · warmup_ratio).
int64_t resolve_warmup_steps(int64_t warmup_steps, float warmup_ratio, int64_t total_steps);

class LrSchedule {
 public:
  LrSchedule(Schedule kind, double base_lr, int64_t warmup_steps, int64_t total_steps);
  // From the recipe's train section; total_steps counts optimizer steps.
  static LrSchedule from_options(const TrainOptions& options, int64_t total_steps);

  double factor_at(int64_t step) const;  // the LambdaLR multiplier
  double lr_at(int64_t step) const { return base_lr_ * factor_at(step); }

  Schedule kind() const { return kind_; }
  double base_lr() const { return base_lr_; }
  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t total_steps() const { return total_steps_; }

 private:
  Schedule kind_;
  double base_lr_;
  int64_t warmup_steps_, total_steps_;
};

}  // namespace ptune::train
