// Checkpoint round trips: save, mutate, load → the same bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "framework/core/rng.h"
#include "framework/io/json_file.h"
#include "framework/train/train_state.h"
#include "train_test_util.h"

namespace ptune::train {
namespace {

using testing::make_abc;

class TrainStateTest : public testing::ScratchDir {};

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// A set and optimizer with non-trivial values and two steps of state.
void train_a_little(ParameterSet& set, AdamW& adamw, uint64_t seed) {
  Rng rng(seed);
  Tensor values = set.values(), grads = set.grads();
  rng.fill_normal(values, 0.0f, 1.0f);
  for (int k = 0; k < 2; ++k) {
    rng.fill_normal(grads, 0.0f, 0.1f);
    adamw.step(set, 1e-2);
  }
}

TEST_F(TrainStateTest, RoundTripRestoresEveryByte) {
  ParameterSet set = make_abc();
  OptimizerOptions options;
  options.weight_decay = 0.01f;
  AdamW adamw(options, set);
  train_a_little(set, adamw, 1);
  TrainState state{.step = 2, .epoch = 1, .epoch_position = 37, .rng_seed = 0xFFFFFFFFFFFFFFF1ull,
                   .rng_offset = 123456789012345ull, .best_metric = 0.8125, .best_step = 1};
  const std::string dir = path("checkpoint-2");
  save_checkpoint(dir, set, adamw, state);
  EXPECT_TRUE(std::filesystem::exists(dir + "/trainer_state.json"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/state.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir + ".tmp"));
  const Tensor values = set.values().clone(), m = adamw.exp_avg().clone(), v = adamw.exp_avg_sq().clone();

  // Mutate everything, then load into a fresh optimizer as a resumed run would.
  train_a_little(set, adamw, 2);
  AdamW resumed(options, set);
  const TrainState loaded = load_checkpoint(dir, set, resumed);
  EXPECT_EQ(loaded, state);
  EXPECT_TRUE(same_bytes(set.values(), values));
  EXPECT_TRUE(same_bytes(resumed.exp_avg(), m));
  EXPECT_TRUE(same_bytes(resumed.exp_avg_sq(), v));
  EXPECT_EQ(resumed.steps(), 2);

  // Saving again over the same directory replaces it.
  state.step = 3;
  save_checkpoint(dir, set, resumed, state);
  EXPECT_EQ(load_checkpoint(dir, set, resumed).step, 3);
  EXPECT_FALSE(std::filesystem::exists(dir + ".old"));
}

TEST_F(TrainStateTest, NoBestMetricYetIsNull) {
  ParameterSet set = make_abc();
  AdamW adamw(OptimizerOptions{}, set);
  const std::string dir = path("ckpt");
  save_checkpoint(dir, set, adamw, TrainState{});
  EXPECT_TRUE(io::read_json_file(dir + "/trainer_state.json")["best_metric"].is_null());
  const TrainState loaded = load_checkpoint(dir, set, adamw);
  EXPECT_TRUE(std::isnan(loaded.best_metric));
  EXPECT_EQ(loaded.best_step, -1);
}

TEST_F(TrainStateTest, MismatchNamesParameterAndFile) {
  ParameterSet set = make_abc();
  AdamW adamw(OptimizerOptions{}, set);
  const std::string dir = path("ckpt");
  save_checkpoint(dir, set, adamw, TrainState{});

  ParameterSet reshaped;
  reshaped.add("a", {3, 4});
  reshaped.add("b", {6}, Decay::kExempt);
  reshaped.add("c", {2, 3});
  reshaped.finalize();
  AdamW opt2(OptimizerOptions{}, reshaped);
  testing::expect_error([&] { load_checkpoint(dir, reshaped, opt2); },
                        {"'b'", "(6)", "(5)", "state.safetensors"});
  // Nothing was written before the error.
  EXPECT_EQ(reshaped.values().data<float>()[0], 0.0f);

  ParameterSet renamed;
  renamed.add("a", {3, 4});
  renamed.add("b", {5}, Decay::kExempt);
  renamed.add("d", {2, 3});
  renamed.finalize();
  AdamW opt3(OptimizerOptions{}, renamed);
  testing::expect_error([&] { load_checkpoint(dir, renamed, opt3); }, {"'d'", "state.safetensors"});

  ParameterSet fewer;
  fewer.add("a", {3, 4});
  fewer.add("b", {5}, Decay::kExempt);
  fewer.finalize();
  AdamW opt4(OptimizerOptions{}, fewer);
  testing::expect_error([&] { load_checkpoint(dir, fewer, opt4); }, {"'c'", "model does not have", "state.safetensors"});
}

TEST_F(TrainStateTest, BadJsonNamesFileAndKey) {
  ParameterSet set = make_abc();
  AdamW adamw(OptimizerOptions{}, set);
  const std::string dir = path("ckpt");
  save_checkpoint(dir, set, adamw, TrainState{});
  nlohmann::json j = io::read_json_file(dir + "/trainer_state.json");
  j.erase("epoch_position");
  io::write_json_file(dir + "/trainer_state.json", j);
  testing::expect_error([&] { load_checkpoint(dir, set, adamw); }, {"trainer_state.json", "'epoch_position'"});
  j["epoch_position"] = "seven";
  io::write_json_file(dir + "/trainer_state.json", j);
  testing::expect_error([&] { load_checkpoint(dir, set, adamw); }, {"trainer_state.json", "'epoch_position'"});
  testing::expect_error([&] { load_checkpoint(path("missing"), set, adamw); }, {"missing"});
}

}  // namespace
}  // namespace ptune::train
