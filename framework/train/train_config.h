// Options of the training loop, as the recipe's `train` section sets them.
#pragma once

#include <cstdint>
#include <string>

namespace ptune::train {

enum class Schedule : uint8_t { kConstant, kLinear, kCosine };

struct OptimizerOptions {  // AdamW, decoupled weight decay (torch.optim.AdamW)
  float lr = 5e-3f;
  float weight_decay = 0.0f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
};

struct TrainOptions {
  uint64_t seed = 42;
  int64_t epochs = 1;
  int64_t max_steps = 0;  // optimizer steps; > 0 overrides epochs
  int64_t micro_batch = 8;
  int64_t grad_accum = 1;
  int64_t eval_batch = 32;
  OptimizerOptions optimizer;
  Schedule schedule = Schedule::kLinear;
  int64_t warmup_steps = 0;
  float warmup_ratio = 0.0f;  // used when warmup_steps is 0
  float max_grad_norm = 1.0f;  // 0 disables clipping
  int64_t log_every = 10;
  int64_t eval_every = 0;  // 0: at the end of every epoch
  int64_t save_every = 0;  // 0: with every evaluation
  std::string output_dir = "runs/ptune";
  std::string metric_for_best = "accuracy";  // accuracy | macro_f1 | loss
};

}  // namespace ptune::train
