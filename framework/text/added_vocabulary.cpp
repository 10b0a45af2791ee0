#include "framework/text/added_vocabulary.h"

#include <algorithm>

#include "framework/core/error.h"

namespace ptune::text {

void AddedVocabulary::Matcher::add(std::string_view pattern, std::size_t token_index) {
  if (pattern.empty()) return;
  uint32_t node = 0;
  for (char ch : pattern) {
    const auto b = static_cast<unsigned char>(ch);
    auto& children = nodes_[node].children;
    const auto it = std::find_if(children.begin(), children.end(), [&](const auto& c) { return c.first == b; });
    if (it != children.end()) {
      node = it->second;
    } else {
      const auto next = static_cast<uint32_t>(nodes_.size());
      children.emplace_back(b, next);
      nodes_.emplace_back();
      node = next;
    }
  }
  // The first token with a given content wins.
  if (!nodes_[node].token) nodes_[node].token = token_index;
  first_[static_cast<unsigned char>(pattern[0])] = true;
}

std::pair<std::size_t, std::size_t> AddedVocabulary::Matcher::longest_at(std::string_view s, std::size_t i) const {
  std::pair<std::size_t, std::size_t> best{0, 0};
  uint32_t node = 0;
  for (std::size_t k = i; k < s.size(); ++k) {
    const auto b = static_cast<unsigned char>(s[k]);
    const auto& children = nodes_[node].children;
    const auto it = std::find_if(children.begin(), children.end(), [&](const auto& c) { return c.first == b; });
    if (it == children.end()) break;
    node = it->second;
    if (nodes_[node].token) best = {k + 1 - i, *nodes_[node].token};
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_content_.emplace(t.content, t.id);
    by_id_.emplace(t.id, i);
    if (!t.normalized) {
      raw_.add(t.content, i);
      decoded_.push_back(t.content);
    } else {
      NormalizedString n(t.content);
      if (normalizer != nullptr) normalizer->normalize(n);
      normalized_.add(n.get(), i);
      decoded_.push_back(n.get());
    }
  }
}

std::optional<uint32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  const auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

const AddedToken* AddedVocabulary::find(uint32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const std::string& AddedVocabulary::decoded_content(uint32_t id) const { return decoded_.at(by_id_.at(id)); }

bool AddedVocabulary::is_special(uint32_t id) const {
  const AddedToken* t = find(id);
  return t != nullptr && t->special;
}

namespace {

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return is_word_char(next_code_point(s, i));
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  std::size_t i = 0;
  return is_word_char(next_code_point(s, i));
}

// Start of the whitespace run that ends s.
std::size_t trailing_space_start(std::string_view s) {
  std::size_t e = s.size();
  while (e > 0) {
    std::size_t b = e - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    std::size_t k = b;
    if (!is_whitespace(next_code_point(s, k))) break;
    e = b;
  }
  return e;
}

// Length of the whitespace run that starts s.
std::size_t leading_space_length(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t k = i;
    if (!is_whitespace(next_code_point(s, k))) break;
    i = k;
  }
  return i;
}

}  // namespace

std::vector<AddedVocabulary::Found> AddedVocabulary::find_matches(std::string_view s, const Matcher& matcher) const {
  std::vector<Found> out;
  if (s.empty()) {
    out.push_back({std::nullopt, 0, 0});
    return out;
  }
  std::size_t start_offset = 0;
  // Matches are searched past the previous match's end, not past the
  // whitespace an rstrip swallowed, as HF's iterator does.
  std::size_t search = 0;
  while (search < s.size()) {
    std::size_t i = search;
    std::pair<std::size_t, std::size_t> m{0, 0};
    for (; i < s.size(); ++i) {
      if (!matcher.may_start(static_cast<unsigned char>(s[i]))) continue;
      m = matcher.longest_at(s, i);
      if (m.first > 0) break;
    }
    if (m.first == 0) break;
    std::size_t begin = i, end = i + m.first;
    search = end;
    const AddedToken& t = tokens_[m.second];
    if (t.single_word) {
      const bool start_space = begin == 0 || !ends_with_word(s.substr(0, begin));
      const bool stop_space = end == s.size() || !starts_with_word(s.substr(end));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) begin = std::max(trailing_space_start(s.substr(0, begin)), start_offset);
    if (t.rstrip) end += leading_space_length(s.substr(end));
    if (begin > start_offset) out.push_back({std::nullopt, start_offset, begin});
    out.push_back({m.second, begin, end});
    start_offset = end;
  }
  if (start_offset != s.size()) out.push_back({std::nullopt, start_offset, s.size()});
  return out;
}

void AddedVocabulary::split_on(NormalizedString&& n, const Matcher& matcher, std::vector<Split>& out) const {
  if (matcher.empty()) {
    out.push_back({std::move(n), std::nullopt});
    return;
  }
  const std::vector<Found> found = find_matches(n.get(), matcher);
  if (found.size() == 1 && !found[0].token) {
    out.push_back({std::move(n), std::nullopt});
    return;
  }
  for (const Found& f : found) {
    NormalizedString piece = n.slice(f.begin, f.end);
    if (f.token) {
      std::vector<Token> tokens;
      tokens.push_back({tokens_[*f.token].id, piece.get(), {0, piece.size()}});
      out.push_back({std::move(piece), std::move(tokens)});
    } else {
      out.push_back({std::move(piece), std::nullopt});
    }
  }
}

PreTokenizedString AddedVocabulary::extract_and_normalize(std::string_view text, const Normalizer* normalizer) const {
  PreTokenizedString pre{NormalizedString(text)};
  pre.split([&](NormalizedString&& n, std::vector<Split>& out) { split_on(std::move(n), raw_, out); });
  pre.split([&](NormalizedString&& n, std::vector<Split>& out) {
    if (normalizer != nullptr) normalizer->normalize(n);
    split_on(std::move(n), normalized_, out);
  });
  return pre;
}

}  // namespace ptune::text
