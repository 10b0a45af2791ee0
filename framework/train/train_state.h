// Training checkpoints: everything an exact resume needs.
//
//   <dir>/trainer_state.json   counters, RNG, data position, best metric,
//                              the optimizer's step and the parameter list
//   <dir>/state.safetensors    "params/<name>", "optimizer/exp_avg/<name>",
//                              "optimizer/exp_avg_sq/<name>" (f32, the
//                              parameter's shape)
//
// save_checkpoint writes into `<dir>.tmp` and renames it onto <dir>, so a
// crash leaves either the old checkpoint or the new one, never a mix
// (an existing <dir> is moved to `<dir>.old` for the instant of the swap).
// The parameters and the optimizer state may live on a GPU: they are
// copied to the host to be written, and back onto their device on load.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "framework/core/parameters.h"
#include "framework/train/optimizer.h"

namespace ptune::train {

struct TrainState {
  int64_t step = 0;            // optimizer steps taken: the schedule's position
  int64_t epoch = 0;           // current epoch (0-based)
  int64_t epoch_position = 0;  // index into this epoch's example order where training resumes
  uint64_t rng_seed = 0;       // the trainer's Rng (dropout …): Rng(rng_seed, rng_offset)
  uint64_t rng_offset = 0;
  // Best evaluation metric so far; NaN until the first evaluation (saved
  // as null).
  double best_metric = std::numeric_limits<double>::quiet_NaN();
  int64_t best_step = -1;

  bool operator==(const TrainState&) const = default;
};

inline constexpr const char* kTrainerStateFile = "trainer_state.json";
inline constexpr const char* kStateTensorsFile = "state.safetensors";

// Writes the checkpoint directory `dir` (parents created as needed).
void save_checkpoint(const std::string& dir, const ParameterSet& params, const AdamW& optimizer,
                     const TrainState& state);

// Restores parameter values and the optimizer state into `params` and
// `optimizer`, returns the counters. Every check (names, shapes, dtypes,
// the JSON's keys) runs before anything is written, and errors name the
// file and the parameter or key.
TrainState load_checkpoint(const std::string& dir, ParameterSet& params, AdamW& optimizer);

}  // namespace ptune::train
