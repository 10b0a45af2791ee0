// Added and special tokens: found in the text before the model runs, so
// "[CLS]" or "<mask>" typed by the user become their own id and are never
// split. Tokens with normalized=false are matched on the raw text, the
// others on the normalized text (their content normalized the same way).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "framework/text/models.h"
#include "framework/text/normalizers.h"
#include "framework/text/pre_tokenized_string.h"

namespace ptune::text {

struct AddedToken {
  std::string content;
  uint32_t id = 0;
  bool special = false;
  bool single_word = false;  // only as a whole word
  bool lstrip = false;       // swallows the whitespace before it
  bool rstrip = false;       // swallows the whitespace after it
  bool normalized = true;    // matched on the normalized text
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Added tokens split off, the rest normalized.
  PreTokenizedString extract_and_normalize(std::string_view text, const Normalizer* normalizer) const;

  std::optional<uint32_t> token_to_id(std::string_view content) const;
  const AddedToken* find(uint32_t id) const;
  // What decode() and id_to_token() show: the content, normalized for
  // normalized tokens (as HF does).
  const std::string& decoded_content(uint32_t id) const;
  bool is_special(uint32_t id) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Leftmost-longest matching of many literals (what HF's aho-corasick does).
  class Matcher {
   public:
    void add(std::string_view pattern, std::size_t token_index);
    bool empty() const { return nodes_.size() <= 1; }
    // The longest pattern starting at s[i]: (length, token index), or length 0.
    std::pair<std::size_t, std::size_t> longest_at(std::string_view s, std::size_t i) const;
    bool may_start(unsigned char b) const { return first_[b]; }

   private:
    struct Node {
      std::vector<std::pair<unsigned char, uint32_t>> children;
      std::optional<std::size_t> token;
    };
    std::vector<Node> nodes_{1};
    std::array<bool, 256> first_{};
  };

  struct Found {
    std::optional<std::size_t> token;  // index in tokens_, or a plain piece
    std::size_t begin, end;
  };
  std::vector<Found> find_matches(std::string_view s, const Matcher& matcher) const;
  void split_on(NormalizedString&& n, const Matcher& matcher, std::vector<Split>& out) const;

  std::vector<AddedToken> tokens_;
  std::vector<std::string> decoded_;  // per token: content, normalized if the token is
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> by_content_;
  std::unordered_map<uint32_t, std::size_t> by_id_;
  Matcher raw_;
  Matcher normalized_;
};

}  // namespace ptune::text
