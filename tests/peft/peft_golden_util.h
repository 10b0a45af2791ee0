// Shared by the peft golden tests: what a test holds and its training step,
// peft's parameter names in ptune's spelling, and an adapter ptune saved (directory `mine`) against the one
// peft saved in a golden fixture (`fixture`/peft_adapter.safetensors and
// peft_adapter_config.json): the same tensor names, values within `tol`,
// and the same value for each of `keys` that peft's config has. Returns
// peft's config for further checks.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "expect_close.h"
#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"
#include "framework/model/task_heads.h"
#include "framework/peft/prompt_model.h"

namespace ptune::testing {

// What a peft golden test holds: the fixture, ptune's model, prompt and
// head built from it, and the batch (ids with virtual tokens where the
// method prepends them). step() is the training step's forward and backward
// (eval mode: no dropout) on that batch, the mean loss's gradients
// accumulated into `params`: the head selects its rows, the model computes
// them, the head scores them.
struct PromptGoldenRun {
  model::HeadOutput step(Arena& arena) {
    Rng rng(0);
    const std::vector<int32_t>& rows = head->select(batch);
    Tensor hidden = prompt->forward(batch_ids, batch_types, batch.attention_mask, arena, Mode::kEval, rng, rows);
    const model::HeadOutput out = head->forward(hidden, arena, Mode::kEval, rng);
    EXPECT_GT(out.count, 0);
    Tensor dhidden = arena.zeros(hidden.shape(), hidden.dtype());
    head->backward(dhidden, 1.0f / float(out.count), arena);
    prompt->backward(dhidden, arena);
    return out;
  }

  std::string dir;
  peft::PromptConfig config;
  std::unique_ptr<model::Transformer> model;
  std::unique_ptr<io::SafetensorsFile> tensors;
  ParameterSet params;
  std::unique_ptr<peft::PromptModel> prompt;
  std::unique_ptr<model::TaskHead> head;
  std::vector<std::string> names;  // peft's names of the trainable parameters
  model::HeadBatch batch;
  Tensor batch_ids, batch_types;
  int64_t B = 0, T = 0;
};

// peft's parameter names → ptune's: prompt_encoder.default.X → prompt_encoder.X,
// base_model.<head>.modules_to_save.default.X → <head>.X.
inline std::string ptune_name(const std::string& peft) {
  const std::string encoder = "prompt_encoder.default.", base = "base_model.", wrapped = ".modules_to_save.default.";
  if (peft.starts_with(encoder)) return "prompt_encoder." + peft.substr(encoder.size());
  const size_t w = peft.find(wrapped);
  if (peft.starts_with(base) && w != std::string::npos)
    return peft.substr(base.size(), w - base.size()) + "." + peft.substr(w + wrapped.size());
  ADD_FAILURE() << "unexpected peft parameter " << peft;
  return peft;
}

inline nlohmann::json expect_adapter_like_peft(const std::filesystem::path& mine, const std::string& fixture,
                                               std::initializer_list<const char*> keys, double tol) {
  const auto ours = io::SafetensorsFile::open((mine / "adapter_model.safetensors").string());
  const auto theirs = io::SafetensorsFile::open(fixture + "/peft_adapter.safetensors");
  EXPECT_EQ(ours.names(), theirs.names());
  for (const std::string& name : theirs.names())
    if (ours.contains(name)) expect_close("adapter " + name, ours.load(name), theirs.load(name), tol);
  const nlohmann::json config_ours = io::read_json_file((mine / "adapter_config.json").string());
  const nlohmann::json config_theirs = io::read_json_file(fixture + "/peft_adapter_config.json");
  for (const char* key : keys)
    if (config_theirs.contains(key)) EXPECT_EQ(config_ours[key], config_theirs[key]) << key;
  return config_theirs;
}

}  // namespace ptune::testing
