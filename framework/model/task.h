// What the model is trained to do, as the recipe's `task` section sets it.
#pragma once

#include <cstdint>

namespace ptune::model {

enum class TaskKind : uint8_t {
  kClassification,  // a trainable head on the pooled / first / last token
  kVerbalizer,      // label words scored by the frozen LM/MLM head at [MASK] (or the answer position)
  kCausalLm,        // next-token loss on the answer tokens only
  kTokenClassification,  // a trainable head on every word's first token (NER, POS)
};

struct TaskOptions {
  TaskKind kind = TaskKind::kClassification;
  float classifier_dropout = 0.1f;  // BertForSequenceClassification's default
};

}  // namespace ptune::model
