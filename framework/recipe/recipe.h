// The recipe: one YAML file (+ `section.key=value` command-line overrides)
// parsed and validated once into the typed option structs of every layer.
// No YAML type crosses this header (yaml-cpp is a private dependency).
//
// Precedence (Marian style): defaults < YAML < command line. One schema
// table in recipe.cpp drives parsing, overrides, validation, "did you
// mean" suggestions and dumping, so a key cannot exist in one and not the
// others.
//
// Sections and keys (every field of the option structs, same snake_case name):
//   model:  path (required)
//   method: name (required; its peft::PromptConfig::preset is applied first,
//           then every other method key overrides it), num_virtual_tokens,
//           placement, encoder, encoder_hidden, encoder_layers,
//           encoder_dropout, init, init_text, prefix_dropout,
//           layers (`all` or a list), projection (true|false: shorthand for
//           encoder prefix-mlp|none; not dumped)
//   task:   kind, classifier_dropout
//   data:   train, eval, format, text, text_pair, label_field, labels,
//           verbalizer, answer_field, max_length, truncation, bucket_by_length
//   train:  seed, epochs, max_steps, micro_batch, grad_accum, eval_batch,
//           lr, weight_decay, beta1, beta2, eps (flat here; they fill
//           TrainOptions::optimizer), schedule, warmup_steps, warmup_ratio,
//           max_grad_norm, log_every, eval_every, save_every, output_dir,
//           metric_for_best
//
// Paths (model.path, data.train, data.eval, train.output_dir) are kept as
// written: a relative path is relative to the working directory, not to the
// recipe file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "framework/data/data_config.h"
#include "framework/model/task.h"
#include "framework/peft/prompt_config.h"
#include "framework/train/train_config.h"

namespace ptune::recipe {

// How the frozen weights are spread over data-parallel ranks (DESIGN.md §4):
// replicated, sharded over every rank, or sharded over the ranks of a node.
enum class ShardMode : uint8_t { kNone, kWorld, kNode };

// Where the model runs, and the dtype of its frozen weights and
// activations (the trainable prompt and head stay f32 either way).
enum class DeviceKind : uint8_t { kCpu, kCuda };
enum class ModelDType : uint8_t { kAuto, kF32, kBF16 };  // auto: f32 on the CPU, bf16 on a GPU

struct ModelOptions {
  std::string path;  // Hugging Face model directory (config.json, *.safetensors, tokenizer.json)
  DeviceKind device = DeviceKind::kCpu;
  ModelDType dtype = ModelDType::kAuto;
  ShardMode shard = ShardMode::kNone;
  // Keep each gathered block from its forward to its backward: Ψ gathered
  // per step instead of 2Ψ, for the memory of the whole model.
  bool shard_keep_for_backward = false;
  // Keep only each block's input in forward and rerun the block before its
  // backward (model::Transformer::set_recompute): activation memory for
  // longer sequences or larger batches, for a second forward of each block.
  bool gradient_checkpointing = false;
};

struct Recipe {
  ModelOptions model;
  peft::PromptConfig method;
  model::TaskOptions task;
  data::DataOptions data;
  train::TrainOptions train;
};

// Reads and validates a YAML recipe. `overrides` are "section.key=value"
// strings: for scalar keys the value is taken verbatim (so templates such as
// `data.text={sentence} It was [MASK].` need no YAML quoting); for list and
// map keys it is parsed as YAML flow (`method.layers=[10,11]`,
// `data.verbalizer={positive: great, negative: terrible}`).
// Errors are ptune::Error naming FILE:LINE and the key, or the override.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});

// The same from text; `origin` names it in error messages (a path).
Recipe parse_recipe(std::string_view yaml_text, const std::string& origin,
                    const std::vector<std::string>& overrides = {});

// The fully resolved recipe as YAML, every key included (defaults too): what
// `ptune train --print-config` prints and the run directory stores.
// parse_recipe(dump_recipe(r)) reproduces r exactly (floats are written in
// their shortest round-trip form), so two recipes are equal iff their dumps are.
std::string dump_recipe(const Recipe& r);

// Every accepted key, "section.key", in schema order (method.projection included).
std::vector<std::string> recipe_keys();

}  // namespace ptune::recipe
