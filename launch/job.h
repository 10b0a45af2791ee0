// A training or inference job assembled from a recipe: the frozen model,
// its tokenizer, the datasets, the prompt model, the task head and their
// trainable parameters. Shared by train, eval, predict and export.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/core/parameters.h"
#include "framework/data/dataset.h"
#include "framework/model/task_heads.h"
#include "framework/model/transformer.h"
#include "framework/peft/prompt_model.h"
#include "framework/recipe/recipe.h"
#include "framework/text/tokenizer.h"

namespace ptune::launch {

struct Job {
  recipe::Recipe recipe;
  std::unique_ptr<model::Transformer> model;
  std::unique_ptr<text::Tokenizer> tokenizer;
  data::TemplateContext context;
  std::optional<data::Dataset> train, eval;
  ParameterSet params;
  std::unique_ptr<peft::PromptModel> prompt;
  std::unique_ptr<model::TaskHead> head;

  // Loads a dataset with this job's template, checking its virtual tokens.
  data::Dataset load_dataset(const std::string& path) const;
};

enum class Datasets : uint8_t { kNone, kEvalOnly, kTrainAndEval };

// Builds and initialises everything (parameters from the recipe's init) on
// the recipe's device: the frozen model is loaded there in model.dtype (on
// a GPU, local rank r takes GPU r), the trainable parameters (f32) move
// there once initialised. `layout` is the part of the frozen model this
// rank keeps when it will be sharded (a ShardedWeights over those ranks
// takes the parts); the default loads it whole.
std::unique_ptr<Job> build_job(const recipe::Recipe& recipe, Datasets datasets, const model::ShardLayout& layout = {});

}  // namespace ptune::launch
