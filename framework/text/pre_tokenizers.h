// Stage 2: pre-tokenizers cut the normalized text into words (and may
// rewrite them, like ByteLevel's byte-to-character map); the model then
// sees one word at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "framework/text/json_view.h"
#include "framework/text/pre_tokenized_string.h"
#include "framework/text/regex.h"

namespace ptune::text {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(PreTokenizedString& s) const = 0;
};

// GPT-2: optional prefix space, the GPT-2 split pattern, then bytes as
// characters.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void pre_tokenize(PreTokenizedString& s) const override;
  bool add_prefix_space() const { return add_prefix_space_; }

 private:
  bool add_prefix_space_;
  bool use_regex_;
};

// Whitespace removed, each punctuation character isolated.
class BertPreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& s) const override;
};

// \w+|[^\w\s]+
class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& s) const override;
};

class WhitespaceSplitPreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& s) const override;
};

class CharDelimiterSplitPreTokenizer final : public PreTokenizer {
 public:
  explicit CharDelimiterSplitPreTokenizer(char32_t delimiter) : delimiter_(delimiter) {}
  void pre_tokenize(PreTokenizedString& s) const override;

 private:
  char32_t delimiter_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

// SentencePiece: spaces become the replacement character (▁), which also
// starts words.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split);
  void pre_tokenize(PreTokenizedString& s) const override;

 private:
  char32_t replacement_;
  std::string replacement_utf8_;
  PrependScheme scheme_;
  bool split_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(PreTokenizedString& s) const override;

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual_digits) : individual_digits_(individual_digits) {}
  void pre_tokenize(PreTokenizedString& s) const override;

 private:
  bool individual_digits_;
};

class PunctuationPreTokenizer final : public PreTokenizer {
 public:
  explicit PunctuationPreTokenizer(SplitBehavior behavior) : behavior_(behavior) {}
  void pre_tokenize(PreTokenizedString& s) const override;

 private:
  SplitBehavior behavior_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(PreTokenizedString& s) const override {
    for (const auto& p : steps_) p->pre_tokenize(s);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

SplitBehavior parse_split_behavior(const JsonView& j);
PrependScheme parse_prepend_scheme(const JsonView& j);

// tokenizer.json's "pre_tokenizer" section (nullptr for null).
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonView& j);

}  // namespace ptune::text
