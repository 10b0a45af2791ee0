#include "framework/train/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "framework/core/error.h"

namespace ptune::train {

double widen_decimal(float x) {
  if (!std::isfinite(x)) return double(x);
  return std::stod(fmt::format("{}", x));  // fmt prints the shortest round-trip decimal
}

int64_t resolve_warmup_steps(int64_t warmup_steps, float warmup_ratio, int64_t total_steps) {
  PTUNE_CHECK(warmup_steps >= 0, "train.warmup_steps must be >= 0, got {}", warmup_steps);
  PTUNE_CHECK(warmup_ratio >= 0.0f && warmup_ratio < 1.0f, "train.warmup_ratio must be in [0, 1), got {}",
              warmup_ratio);
  PTUNE_CHECK(total_steps >= 0, "total training steps must be >= 0, got {}", total_steps);
  if (warmup_steps > 0) return warmup_steps;
  return int64_t(std::ceil(double(total_steps) * widen_decimal(warmup_ratio)));
}

LrSchedule::LrSchedule(Schedule kind, double base_lr, int64_t warmup_steps, int64_t total_steps)
    : kind_(kind), base_lr_(base_lr), warmup_steps_(warmup_steps), total_steps_(total_steps) {
  PTUNE_CHECK(std::isfinite(base_lr) && base_lr >= 0.0, "learning rate must be finite and >= 0, got {}", base_lr);
  PTUNE_CHECK(warmup_steps >= 0, "warmup steps must be >= 0, got {}", warmup_steps);
  PTUNE_CHECK(kind == Schedule::kConstant || total_steps >= 1,
              "a decaying learning-rate schedule needs >= 1 training step, got {}", total_steps);
}

LrSchedule LrSchedule::from_options(const TrainOptions& options, int64_t total_steps) {
  return LrSchedule(options.schedule, widen_decimal(options.optimizer.lr),
                    resolve_warmup_steps(options.warmup_steps, options.warmup_ratio, total_steps), total_steps);
}

double LrSchedule::factor_at(int64_t step) const {
  PTUNE_CHECK(step >= 0, "learning rate asked for step {}", step);
  // The expressions (and their evaluation order) are transformers'.
  if (kind_ == Schedule::kConstant) {
    if (step < warmup_steps_) return double(step) / std::max(1.0, double(warmup_steps_));
    return 1.0;
  }
  if (step < warmup_steps_) return double(step) / double(std::max<int64_t>(1, warmup_steps_));
  const double rest = double(std::max<int64_t>(1, total_steps_ - warmup_steps_));
  if (kind_ == Schedule::kLinear) return std::max(0.0, double(total_steps_ - step) / rest);
  const double progress = double(step - warmup_steps_) / rest;
  constexpr double kNumCycles = 0.5;
  return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * kNumCycles * 2.0 * progress)));
}

}  // namespace ptune::train
