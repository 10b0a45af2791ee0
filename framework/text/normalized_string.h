// A string under normalization that remembers, for every byte, which bytes
// of the original text it came from: what makes offsets exact.
//
// This is Hugging Face's NormalizedString, with one simplification: the
// alignments are absolute positions in the text given to encode(), so a
// slice keeps its parent's alignments unchanged.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "framework/text/unicode.h"

namespace ptune::text {

// [begin, end) in bytes.
struct Offsets {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool operator==(const Offsets&) const = default;
};

// One piece of a string cut by a pattern: is_match tells a delimiter from
// the text between delimiters.
struct Match {
  std::size_t begin;
  std::size_t end;
  bool is_match;
};
using Matches = std::vector<Match>;

// How split() treats the delimiters a pattern found.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A character of a transformation and how it moves the original: 0 replaces
// one character, +1 is inserted, -n replaces one and removes n more.
struct CharChange {
  char32_t c;
  int change;
};

// Every character c with pred(c) is its own match (HF's char patterns).
template <class Pred>
Matches find_char_matches(std::string_view s, Pred pred) {
  Matches out;
  if (s.empty()) {
    out.push_back({0, 0, false});
    return out;
  }
  std::size_t last = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t b = i;
    const char32_t c = next_code_point(s, i);
    if (pred(c)) {
      if (last < b) out.push_back({last, b, false});
      out.push_back({b, i, true});
      last = i;
    }
  }
  if (last < s.size()) out.push_back({last, s.size(), false});
  return out;
}

// Non-overlapping occurrences of a literal (HF escapes it into a regex).
Matches find_literal_matches(std::string_view s, std::string_view literal);

void invert_matches(Matches& m);

class NormalizedString {
 public:
  NormalizedString() = default;
  // A string as given to encode(): byte i of it is original byte
  // shift + i.
  explicit NormalizedString(std::string_view original, std::size_t shift = 0);

  const std::string& get() const { return normalized_; }
  bool empty() const { return normalized_.empty(); }
  std::size_t size() const { return normalized_.size(); }
  // Where this piece starts in the text given to encode().
  std::size_t original_shift() const { return original_shift_; }
  // The original bytes behind normalized bytes [begin, end).
  Offsets original_offsets(std::size_t begin, std::size_t end) const;

  // Replaces normalized bytes [begin, end) by dest; initial_offset
  // characters of that range are dropped first.
  void transform_range(std::size_t begin, std::size_t end, const std::vector<CharChange>& dest,
                       std::size_t initial_offset);
  void transform(const std::vector<CharChange>& dest, std::size_t initial_offset) {
    transform_range(0, normalized_.size(), dest, initial_offset);
  }

  template <class Keep>
  void filter(Keep keep);
  template <class Map>
  void map(Map f);  // one character for one: no change in length of characters
  void prepend(std::string_view s);
  // Replaces every match (is_match) of `matches` by content.
  void replace(const Matches& matches, std::string_view content);
  void lowercase();
  void normalize(NormalizationForm form);
  void strip(bool left, bool right);
  // Every byte becomes the character table[byte] (ByteLevel); the bytes of
  // one character all align with that character.
  void map_bytes(const std::array<char32_t, 256>& table);

  NormalizedString slice(std::size_t begin, std::size_t end) const;
  std::vector<NormalizedString> split(const Matches& matches, SplitBehavior behavior) const;

 private:
  struct Align {
    uint32_t begin;
    uint32_t end;
  };

  std::string normalized_;
  std::vector<Align> alignments_;  // one per byte of normalized_
  std::size_t original_shift_ = 0;
};

template <class Keep>
void NormalizedString::filter(Keep keep) {
  // Removed characters fold into the kept character before them (leading
  // ones into initial_offset), as in HF, so alignments stay contiguous.
  std::vector<CharChange> dest;
  dest.reserve(normalized_.size());
  int removed = 0;
  std::size_t removed_start = 0;
  bool have_last = false;
  char32_t last = 0;
  for (std::size_t i = 0; i < normalized_.size();) {
    const char32_t c = next_code_point(normalized_, i);
    if (keep(c)) {
      if (have_last) {
        dest.push_back({last, -removed});
      } else {
        removed_start = static_cast<std::size_t>(removed);
      }
      last = c;
      have_last = true;
      removed = 0;
    } else {
      ++removed;
    }
  }
  if (have_last) {
    dest.push_back({last, -removed});
  } else {
    removed_start = static_cast<std::size_t>(removed);
  }
  transform(dest, removed_start);
}

template <class Map>
void NormalizedString::map(Map f) {
  std::vector<CharChange> dest;
  dest.reserve(normalized_.size());
  for (std::size_t i = 0; i < normalized_.size();) dest.push_back({f(next_code_point(normalized_, i)), 0});
  transform(dest, 0);
}

}  // namespace ptune::text
