// The training loop: micro-batches → prompt model → task head → loss,
// gradient accumulation, clipping, AdamW, schedule, evaluation, best and
// last checkpoints with exact resume (parameters, optimizer, schedule
// position, RNG, data position).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "framework/core/arena.h"
#include "framework/core/parameters.h"
#include "framework/core/rng.h"
#include "framework/data/batch.h"
#include "framework/data/dataset.h"
#include "framework/data/sampler.h"
#include "framework/model/task_heads.h"
#include "framework/peft/prompt_model.h"
#include "framework/train/optimizer.h"
#include "framework/train/run_log.h"
#include "framework/train/schedule.h"
#include "framework/train/train_config.h"
#include "framework/train/train_state.h"

namespace ptune::dist {
class Communicator;
class ShardedWeights;
}  // namespace ptune::dist

namespace ptune::train {

// How a trainer runs as one rank of a data-parallel job. The default (no
// communicator) is a single process.
struct Distributed {
  dist::Communicator* comm = nullptr;     // all ranks: counts, metrics, the stop flag (host values)
  // All ranks, for the prompt gradients and parameters where they live (NCCL
  // on GPUs); nullptr: `comm` carries them too (CPU tensors).
  dist::Communicator* tensor_comm = nullptr;
  dist::ShardedWeights* shard = nullptr;  // set when the frozen weights are sharded
  std::string shard_mode = "none";        // for the report only
  // This rank was asked to stop (SIGTERM/SIGUSR1): the ranks agree on it at
  // the next step boundary, save checkpoint-last and return from run().
  std::function<bool()> stop_requested;
  // Called before every optimizer step with the step about to run (a test
  // hook: launch injects failures with it).
  std::function<void(int64_t)> before_step;
};

// seqeval's classification_report row of one entity type.
struct EntityTypeScores {
  std::string type;
  double precision = 0.0, recall = 0.0, f1 = 0.0;
  int64_t number = 0;  // entities of the type in the labels (seqeval's "support")
};

struct EvalResult {
  double loss = 0.0;
  double accuracy = 0.0;  // token classification: over the tagged tokens
  double macro_f1 = 0.0;  // token classification: over the tag classes, per token
  int64_t examples = 0;
  // Class index and (K) scores per example, in dataset order, on every rank
  // (classification and verbalizer tasks).
  std::vector<int32_t> predictions;
  std::vector<std::vector<float>> scores;
  // Token classification: per example (dataset order, every rank), the
  // predicted class of each tagged word (Example::tag_words' words), and
  // the tagged tokens counted. With IOB tags (EntityScorer::applies),
  // seqeval's entity-level micro precision / recall / F1 too, and per
  // entity type as run_ner.py's return_entity_level_metrics: the types
  // found in the labels or the predictions (seqeval's classification_report
  // rows), in EntityScorer::types() order.
  std::vector<std::vector<int32_t>> tag_predictions;
  int64_t tokens = 0;
  bool entities = false;
  double precision = 0.0, recall = 0.0, f1 = 0.0;
  std::vector<EntityTypeScores> entity_types;

  nlohmann::json to_json() const;
  // "accuracy", "macro_f1", "f1" (entities) or "loss"; larger is better.
  double metric(const std::string& name) const;
};

// Runs the model on a dataset in eval mode (no dropout, no gradients);
// `arena` is on the model's device.
// With a communicator of N ranks each rank evaluates its slice and the
// metrics (loss, accuracy, macro-F1, examples) are reduced over all ranks;
// predictions and scores then hold this rank's slice only.
EvalResult evaluate(peft::PromptModel& prompt, model::TaskHead& head, const data::Dataset& dataset, int64_t batch_size,
                    Arena& arena, const Distributed& dist = {});

class Trainer {
 public:
  // save_adapter(dir) writes the current prompt and head as an adapter
  // (PEFT format): called for the best evaluation and at the end.
  Trainer(const TrainOptions& options, peft::PromptModel& prompt, model::TaskHead& head, ParameterSet& params,
          const data::Dataset& train, data::Sampler sampler, const data::Dataset* eval, RunLog& log,
          std::function<void(const std::string&)> save_adapter);

  // Before run(): this trainer is one rank of `dist.comm`.
  void set_distributed(Distributed dist);

  // Trains to the end, resuming from <output_dir>/checkpoint-last if present.
  // Returns false when stopped early by stop_requested (checkpoint saved).
  bool run();

  int64_t total_steps() const { return total_steps_; }
  const TrainState& state() const { return state_; }
  // The loss of every optimizer step taken by this process, in order.
  const std::vector<double>& step_losses() const { return losses_; }
  // Communication of the last step, and totals (written to
  // <output_dir>/dist.json by rank 0 at the end of run()).
  nlohmann::json dist_report() const { return dist_report_; }

 private:
  double step(const std::vector<std::vector<int64_t>>& micro_batches, int64_t& tokens);
  void evaluate_and_save();
  void save_last();
  bool rank0() const;
  void write_dist_report(double step_seconds, int64_t steps);
  std::string path(const std::string& name) const;

  TrainOptions options_;
  peft::PromptModel& prompt_;
  model::TaskHead& head_;
  ParameterSet& params_;
  const data::Dataset& train_;
  const data::Dataset* eval_;
  RunLog& log_;
  std::function<void(const std::string&)> save_adapter_;

  data::Sampler sampler_;
  int64_t steps_per_epoch_ = 0, total_steps_ = 0;
  AdamW optimizer_;
  LrSchedule schedule_;
  Rng rng_;
  Arena arena_;        // the step's activations, on the model's device
  Arena batch_arena_;  // the collated batch, on the host
  TrainState state_;
  std::vector<double> losses_;
  Distributed dist_;
  nlohmann::json dist_report_;
  int64_t last_gather_bytes_ = 0, last_grad_reduce_bytes_ = 0, last_reduce_bytes_ = 0;
  double comm_seconds_ = 0.0;
};

}  // namespace ptune::train
