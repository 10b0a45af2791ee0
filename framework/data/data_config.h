// Options of the data pipeline, as the recipe's `data` section sets them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ptune::data {

enum class Format : uint8_t { kAuto, kJsonl, kCsv, kTsv, kConll };  // kAuto: from the file extension
enum class Truncation : uint8_t { kLongestFirst, kOnlyFirst, kOnlySecond };

struct DataOptions {
  std::string train, eval;  // dataset paths (eval optional)
  Format format = Format::kAuto;
  // Templates: text with {field} references, [P*k] virtual-token slots and
  // [MASK] (the tokenizer's mask token). `text_pair` is the optional second
  // segment (e.g. RTE's hypothesis), encoded as a pair.
  std::string text = "{sentence}";
  std::string text_pair;
  std::string label_field = "label";
  // The label set, in class-index order; a label outside it is an error.
  // Values are compared as strings (JSON 0/1 and "0"/"1" both match "0"/"1").
  std::vector<std::string> labels;
  std::map<std::string, std::string> verbalizer;  // label → word (verbalizer tasks)
  std::string answer_field;                       // causal-LM tasks: the answer text
  // Token classification: the words, a JSONL list field; label_field then
  // holds one tag per word (a list too), each a member of `labels`.
  std::string tokens_field = "tokens";
  // run_ner.py's label_all_tokens: a word's later tokens carry its tag too
  // (B-X as I-X when the label set has it), and train and count like the
  // first; off (its default): only the first token.
  bool label_all_tokens = false;
  int64_t max_length = 128;
  Truncation truncation = Truncation::kLongestFirst;
  bool bucket_by_length = true;
};

}  // namespace ptune::data
