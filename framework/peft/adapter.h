// Adapters in the PEFT format: adapter_config.json + adapter_model.safetensors
// holding `prompt_embeddings` (the encoder's output, (P, C) rows or
// (P, L·2·C) prefixes, as peft saves prompt-learning adapters) and the task
// head's weights (peft's modules_to_save), so PeftModel.from_pretrained
// loads what ptune trained — and ptune loads what peft saved.
#pragma once

#include <string>

#include "framework/core/arena.h"
#include "framework/core/parameters.h"
#include "framework/model/task.h"
#include "framework/peft/prompt_model.h"

namespace ptune::peft {

struct AdapterInfo {
  std::string base_model;  // base_model_name_or_path
  model::TaskKind task = model::TaskKind::kClassification;
};

// Writes `dir`/adapter_config.json and adapter_model.safetensors. `params`
// holds the head's parameters (every parameter not named prompt_encoder.*).
// The prompt and the set may live on a GPU: what is written is copied to
// the host first.
void save_adapter(const std::string& dir, PromptModel& prompt, const ParameterSet& params, const AdapterInfo& info,
                  Arena& arena);

// The prompt (P, W) and head tensors of an adapter directory, by name, on
// the host; Tensor::copy_from puts them into a set on any device.
struct Adapter {
  nlohmann::json config;
  Tensor prompt_embeddings;
  std::vector<std::pair<std::string, Tensor>> head;  // ptune parameter names
};
Adapter load_adapter(const std::string& dir);

// Inference from an adapter: a prompt config whose table *is* the saved
// prompt (no encoder), with the adapter's placement and length.
PromptConfig inference_config(const Adapter& adapter, const PromptConfig& trained);

}  // namespace ptune::peft
