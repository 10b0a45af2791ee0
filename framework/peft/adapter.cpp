#include "framework/peft/adapter.h"

#include <algorithm>
#include <filesystem>

#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"

namespace ptune::peft {

namespace {

namespace fs = std::filesystem;

constexpr const char* kPromptKey = "prompt_embeddings";
// peft stores a prompt-learning model's modules_to_save under the wrapped
// model's attribute path.
constexpr const char* kHeadPrefix = "base_model.";
constexpr const char* kPtuneFile = "ptune_adapter.json";  // what peft's config cannot say (layer subsets)

const char* peft_type(Method m) {
  switch (m) {
    case Method::kPromptTuning: return "PROMPT_TUNING";
    case Method::kPrefixTuning:
    case Method::kPTuningV2: return "PREFIX_TUNING";
    case Method::kPTuning: return "P_TUNING";
  }
  return "";
}

nlohmann::json task_type(model::TaskKind task) {
  switch (task) {
    case model::TaskKind::kClassification: return "SEQ_CLS";
    case model::TaskKind::kCausalLm: return "CAUSAL_LM";
    case model::TaskKind::kTokenClassification: return "TOKEN_CLS";
    case model::TaskKind::kVerbalizer: return nullptr;  // peft has no masked-LM task type
  }
  return nullptr;
}

}  // namespace

void save_adapter(const std::string& dir, PromptModel& prompt, const ParameterSet& params, const AdapterInfo& info,
                  Arena& arena) {
  const PromptConfig& c = prompt.config();
  const model::ModelSpec& spec = prompt.model().spec();
  fs::create_directories(dir);

  nlohmann::json config = {
      {"peft_type", peft_type(c.method)},
      {"task_type", task_type(info.task)},
      {"base_model_name_or_path", info.base_model},
      {"inference_mode", true},
      {"num_virtual_tokens", c.num_virtual_tokens},
      {"token_dim", spec.hidden},
      {"num_transformer_submodules", 1},
      {"num_attention_heads", spec.heads},
      {"num_layers", spec.layers},
      {"revision", nullptr},
  };
  if (c.placement == Placement::kKvPrefix && spec.is_llama_family()) {
    // peft (utils/other.py): with num_key_value_heads in the config the
    // prefix is kv_heads·head_dim wide and "heads" are the KV heads.
    config["token_dim"] = spec.kv_heads * spec.head_dim;
    config["num_attention_heads"] = spec.kv_heads;
  }
  std::vector<std::string> modules;
  for (const auto& e : params.entries())
    if (!e.name.starts_with("prompt_encoder.")) {
      const std::string module = e.name.substr(0, e.name.find('.'));
      if (std::find(modules.begin(), modules.end(), module) == modules.end()) modules.push_back(module);
    }
  config["modules_to_save"] = modules.empty() ? nlohmann::json(nullptr) : nlohmann::json(modules);
  switch (c.method) {
    case Method::kPromptTuning:
      config["prompt_tuning_init"] = c.init == PromptInit::kText          ? "TEXT"
                                     : c.init == PromptInit::kSampleVocab ? "SAMPLE_VOCAB"
                                                                          : "RANDOM";
      config["prompt_tuning_init_text"] = c.init == PromptInit::kText ? nlohmann::json(c.init_text) : nullptr;
      config["tokenizer_name_or_path"] = c.init == PromptInit::kText ? nlohmann::json(info.base_model) : nullptr;
      break;
    case Method::kPrefixTuning:
    case Method::kPTuningV2:
      config["prefix_projection"] = c.encoder == Encoder::kPrefixMlp;
      config["encoder_hidden_size"] = c.encoder_hidden > 0 ? c.encoder_hidden : spec.hidden;
      break;
    case Method::kPTuning:
      config["encoder_reparameterization_type"] = c.encoder == Encoder::kLstm ? "LSTM" : "MLP";
      config["encoder_hidden_size"] = c.encoder_hidden > 0 ? c.encoder_hidden : spec.hidden;
      config["encoder_num_layers"] = c.encoder_layers;
      config["encoder_dropout"] = c.encoder_dropout;
      break;
  }
  io::write_json_file(dir + "/adapter_config.json", config);

  // Host copies, whatever device the prompt and the set live on (a GPU
  // copy waits for the work queued on the device's default stream).
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {kPromptKey, prompt.prompt_embeddings(arena).to(Device::cpu())}};
  for (size_t i = 0; i < params.entries().size(); ++i) {
    const std::string& name = params.entries()[i].name;
    if (!name.starts_with("prompt_encoder."))
      tensors.emplace_back(kHeadPrefix + name, params.value(i).to(Device::cpu()));
  }
  io::write_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});

  nlohmann::json extra = {{"method", method_name(c.method)},
                          {"placement", c.placement == Placement::kInput ? "input" : "kv-prefix"},
                          {"layers", prompt.prefix_layers()}};
  io::write_json_file(dir + "/" + kPtuneFile, extra);
}

Adapter load_adapter(const std::string& dir) {
  Adapter a;
  a.config = io::read_json_file(dir + "/adapter_config.json");
  const auto file = io::SafetensorsFile::open(dir + "/adapter_model.safetensors");
  a.prompt_embeddings = file.load(kPromptKey);
  for (const std::string& name : file.names()) {
    if (name == kPromptKey) continue;
    PTUNE_CHECK(name.starts_with(kHeadPrefix), "{}: unexpected tensor '{}'", file.path(), name);
    a.head.emplace_back(name.substr(std::string(kHeadPrefix).size()), file.load(name));
  }
  return a;
}

PromptConfig inference_config(const Adapter& adapter, const PromptConfig& trained) {
  PromptConfig c = trained;
  c.encoder = Encoder::kNone;
  c.num_virtual_tokens = adapter.prompt_embeddings.size(0);
  c.init = PromptInit::kRandom;
  c.prefix_dropout = 0.0f;
  return c;
}

}  // namespace ptune::peft
