// The one prompt mechanism (DESIGN.md §1): where virtual tokens enter the
// frozen model × how trainable parameters become them. The four methods
// are presets of this struct; recipes may override any field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ptune::peft {

enum class Method : uint8_t { kPromptTuning, kPrefixTuning, kPTuning, kPTuningV2 };

enum class Placement : uint8_t {
  kInput,     // rows of the input embeddings: prepended, or at template slots [P]
  kKvPrefix,  // per-layer virtual keys/values
};

enum class Encoder : uint8_t {
  kNone,       // the embedding table is the prompt (prompt tuning, P-Tuning v2)
  kPrefixMlp,  // peft PrefixEncoder projection: Embedding → Linear → tanh → Linear
  kMlp,        // peft PromptEncoder "MLP"
  kLstm,       // peft PromptEncoder "LSTM": bi-LSTM + MLP head
};

enum class PromptInit : uint8_t { kRandom, kSampleVocab, kText };

struct PromptConfig {
  Method method = Method::kPromptTuning;
  int64_t num_virtual_tokens = 20;  // P
  Placement placement = Placement::kInput;
  Encoder encoder = Encoder::kNone;
  int64_t encoder_hidden = 0;  // 0: the model's hidden size (peft's default)
  int64_t encoder_layers = 2;  // P-Tuning LSTM layers
  float encoder_dropout = 0.0f;
  PromptInit init = PromptInit::kRandom;  // prompt tuning
  std::string init_text;                  // PromptInit::kText
  float prefix_dropout = 0.0f;            // dropout on the KV prefix while training
  std::vector<int64_t> layers;            // KV-prefix layers; empty = every layer

  // The defaults of a method, as peft (and the P-Tuning v2 paper) set them.
  static PromptConfig preset(Method method);
};

Method method_from_name(const std::string& name);  // "prompt-tuning", "prefix-tuning", "p-tuning", "p-tuning-v2"
std::string method_name(Method method);

}  // namespace ptune::peft
