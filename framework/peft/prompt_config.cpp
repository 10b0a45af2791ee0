#include "framework/peft/prompt_config.h"

#include "framework/core/error.h"

namespace ptune::peft {

PromptConfig PromptConfig::preset(Method method) {
  PromptConfig c;
  c.method = method;
  switch (method) {
    case Method::kPromptTuning:
      c.placement = Placement::kInput;
      c.encoder = Encoder::kNone;
      break;
    case Method::kPrefixTuning:
      c.placement = Placement::kKvPrefix;
      c.encoder = Encoder::kPrefixMlp;
      break;
    case Method::kPTuning:
      c.placement = Placement::kInput;
      c.encoder = Encoder::kLstm;
      break;
    case Method::kPTuningV2:
      c.placement = Placement::kKvPrefix;
      c.encoder = Encoder::kNone;
      break;
  }
  return c;
}

Method method_from_name(const std::string& name) {
  if (name == "prompt-tuning") return Method::kPromptTuning;
  if (name == "prefix-tuning") return Method::kPrefixTuning;
  if (name == "p-tuning") return Method::kPTuning;
  if (name == "p-tuning-v2") return Method::kPTuningV2;
  PTUNE_FAIL("unknown method '{}' (prompt-tuning, prefix-tuning, p-tuning, p-tuning-v2)", name);
}

std::string method_name(Method method) {
  switch (method) {
    case Method::kPromptTuning: return "prompt-tuning";
    case Method::kPrefixTuning: return "prefix-tuning";
    case Method::kPTuning: return "p-tuning";
    case Method::kPTuningV2: return "p-tuning-v2";
  }
  return "?";
}

}  // namespace ptune::peft
