// Regular expressions of tokenizer.json (Split, Replace), compiled by ICU,
// and a hand-written matcher for the GPT-2 pattern that ByteLevel uses on
// every word, where a general engine would cost most of the encode time.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "framework/text/normalized_string.h"

namespace ptune::text {

class Regex {
 public:
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // All non-overlapping matches and the text between them (onig's find_iter).
  Matches find_matches(std::string_view s) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;  // ICU's pattern, kept out of this header
  std::string pattern_;
  std::unique_ptr<Compiled> compiled_;
};

// tokenizer.json's pattern: {"String": literal} or {"Regex": expression}.
class Pattern {
 public:
  static Pattern literal(std::string text);
  static Pattern regex(std::string_view expression);

  Matches find_matches(std::string_view s) const;

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

// GPT-2's pre-tokenization pattern:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
Matches find_gpt2_matches(std::string_view s);

// The Whitespace pre-tokenizer's pattern \w+|[^\w\s]+.
Matches find_word_matches(std::string_view s);

}  // namespace ptune::text
