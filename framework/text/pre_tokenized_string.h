// The text between pipeline stages: a list of pieces (normalized strings),
// some already turned into tokens (added tokens), the others waiting for
// the pre-tokenizer and the model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/text/normalized_string.h"

namespace ptune::text {

// A token of one piece: offsets are bytes of that piece's normalized text.
struct Token {
  uint32_t id;
  std::string value;
  Offsets offsets;
};

struct Split {
  NormalizedString normalized;
  std::optional<std::vector<Token>> tokens;
};

class PreTokenizedString {
 public:
  explicit PreTokenizedString(NormalizedString whole) { splits_.push_back({std::move(whole), std::nullopt}); }

  // f(NormalizedString&&, std::vector<Split>& out) replaces every piece not
  // yet tokenized by the pieces it appends; empty pieces are dropped.
  template <class F>
  void split(F f) {
    std::vector<Split> next;
    next.reserve(splits_.size() * 2);
    std::vector<Split> produced;
    for (Split& s : splits_) {
      if (s.tokens) {
        next.push_back(std::move(s));
        continue;
      }
      produced.clear();
      f(std::move(s.normalized), produced);
      for (Split& p : produced) {
        if (!p.normalized.empty()) next.push_back(std::move(p));
      }
    }
    splits_ = std::move(next);
  }

  // Splits every piece not yet tokenized into normalized strings.
  template <class F>
  void split_normalized(F f) {
    split([&](NormalizedString&& n, std::vector<Split>& out) {
      for (NormalizedString& piece : f(std::move(n))) out.push_back({std::move(piece), std::nullopt});
    });
  }

  // f(NormalizedString&) on every piece not yet tokenized.
  template <class F>
  void normalize(F f) {
    for (Split& s : splits_) {
      if (!s.tokens) f(s.normalized);
    }
  }

  std::vector<Split>& splits() { return splits_; }
  const std::vector<Split>& splits() const { return splits_; }

 private:
  std::vector<Split> splits_;
};

}  // namespace ptune::text
