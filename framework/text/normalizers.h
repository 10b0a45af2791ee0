// Stage 1 of the pipeline: normalizers rewrite the text (Unicode forms,
// case, accents, BERT's cleaning, replacements) keeping byte alignments.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/text/json_view.h"
#include "framework/text/normalized_string.h"
#include "framework/text/regex.h"

namespace ptune::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedString& s) const = 0;
};

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalizationForm form) : form_(form) {}
  void normalize(NormalizedString& s) const override { s.normalize(form_); }

 private:
  NormalizationForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override { s.lowercase(); }
};

// Removes combining marks (run after NFD/NFKD to strip accents).
class StripAccentsNormalizer final : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(NormalizedString& s) const override { s.strip(left_, right_); }

 private:
  bool left_, right_;
};

struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // unset: follows lowercase
  bool lowercase = true;
};

class BertNormalizer final : public Normalizer {
 public:
  explicit BertNormalizer(BertNormalizerOptions options) : options_(options) {}
  void normalize(NormalizedString& s) const override;

 private:
  BertNormalizerOptions options_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(NormalizedString& s) const override { s.replace(pattern_.find_matches(s.get()), content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

// SentencePiece's compiled character map (`Precompiled`: what T5, ALBERT
// and XLM-R tokenizer.json files carry, usually NFKC-like rules): a
// double-array trie (darts-clone) over UTF-8 byte strings whose values are
// offsets of NUL-terminated replacements in a string pool. As Hugging Face
// applies it (spm_precompiled + tokenizers): each grapheme cluster shorter
// than 6 bytes is replaced whole by the rule of the SHORTEST key that is a
// prefix of it; otherwise, and for longer clusters, each character by its
// own rule, or kept.
class PrecompiledNormalizer final : public Normalizer {
 public:
  // charsmap: [u32 trie bytes, little-endian][trie: u32 units][pool].
  // `what` names it in errors (the tokenizer.json key).
  PrecompiledNormalizer(std::string_view charsmap, std::string_view what);
  void normalize(NormalizedString& s) const override;

 private:
  // The replacement of the shortest key that prefixes `chunk`, or nullopt.
  std::optional<std::string_view> transform(std::string_view chunk) const;

  std::vector<uint32_t> trie_;
  std::string pool_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void normalize(NormalizedString& s) const override { s.prepend(prepend_); }

 private:
  std::string prepend_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(NormalizedString& s) const override {
    for (const auto& n : steps_) n->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// {"String": ...} or {"Regex": ...}, shared by Replace and Split.
Pattern parse_pattern(const JsonView& j);

// tokenizer.json's "normalizer" section (nullptr for null).
std::unique_ptr<Normalizer> make_normalizer(const JsonView& j);

}  // namespace ptune::text
