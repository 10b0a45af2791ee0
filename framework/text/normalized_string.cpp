#include "framework/text/normalized_string.h"

#include <algorithm>
#include <limits>

#include "framework/core/error.h"

namespace ptune::text {

Matches find_literal_matches(std::string_view s, std::string_view literal) {
  Matches out;
  if (s.empty()) {
    out.push_back({0, 0, false});
    return out;
  }
  if (literal.empty()) {
    out.push_back({0, s.size(), false});
    return out;
  }
  std::size_t prev = 0;
  for (std::size_t pos = s.find(literal); pos != std::string_view::npos; pos = s.find(literal, pos + literal.size())) {
    if (prev != pos) out.push_back({prev, pos, false});
    out.push_back({pos, pos + literal.size(), true});
    prev = pos + literal.size();
  }
  if (prev != s.size()) out.push_back({prev, s.size(), false});
  return out;
}

void invert_matches(Matches& m) {
  for (Match& x : m) x.is_match = !x.is_match;
}

NormalizedString::NormalizedString(std::string_view original, std::size_t shift)
    : normalized_(original), original_shift_(shift) {
  PTUNE_CHECK(shift + original.size() < std::numeric_limits<uint32_t>::max(), "text too long to tokenize: {} bytes",
              original.size());
  // Every byte of a character aligns with the whole character, as in HF.
  alignments_.resize(original.size());
  for (std::size_t i = 0; i < original.size();) {
    const std::size_t len = utf8_length(static_cast<unsigned char>(original[i]));
    const Align a{static_cast<uint32_t>(shift + i), static_cast<uint32_t>(shift + i + len)};
    for (std::size_t k = 0; k < len && i + k < original.size(); ++k) alignments_[i + k] = a;
    i += len;
  }
}

Offsets NormalizedString::original_offsets(std::size_t begin, std::size_t end) const {
  if (begin >= end || end > alignments_.size()) return {original_shift_ + begin, original_shift_ + end};
  return {alignments_[begin].begin, alignments_[end - 1].end};
}

void NormalizedString::transform_range(std::size_t begin, std::size_t end, const std::vector<CharChange>& dest,
                                       std::size_t initial_offset) {
  // `offset` walks the replaced characters: a character with change <= 0
  // consumes one of them (and takes its alignment), -n consumes n more; an
  // inserted one (+1) takes the alignment of the byte just before.
  std::size_t offset = begin;
  for (std::size_t k = 0; k < initial_offset && offset < end; ++k) offset += utf8_length(static_cast<unsigned char>(normalized_[offset]));
  std::string text;
  std::vector<Align> aligns;
  text.reserve(dest.size() + 8);
  aligns.reserve(dest.size() + 8);
  for (const CharChange& ch : dest) {
    Align align{0, 0};
    if (ch.change > 0) {
      if (offset >= 1) align = alignments_[offset - 1];
    } else {
      PTUNE_CHECK(offset < alignments_.size(), "normalization consumed more characters than the text has");
      align = alignments_[offset];
      offset += utf8_length(static_cast<unsigned char>(normalized_[offset]));
      for (int k = 0; k < -ch.change && offset < end; ++k) {
        offset += utf8_length(static_cast<unsigned char>(normalized_[offset]));
      }
    }
    const std::size_t before = text.size();
    append_utf8(text, ch.c);
    aligns.insert(aligns.end(), text.size() - before, align);
  }
  if (begin == 0 && end == normalized_.size()) {
    normalized_ = std::move(text);
    alignments_ = std::move(aligns);
    return;
  }
  normalized_.replace(begin, end - begin, text);
  alignments_.erase(alignments_.begin() + static_cast<std::ptrdiff_t>(begin),
                    alignments_.begin() + static_cast<std::ptrdiff_t>(end));
  alignments_.insert(alignments_.begin() + static_cast<std::ptrdiff_t>(begin), aligns.begin(), aligns.end());
}

void NormalizedString::prepend(std::string_view s) {
  if (normalized_.empty() || s.empty()) return;
  std::size_t i = 0;
  const char32_t first = next_code_point(normalized_, i);
  std::vector<CharChange> dest;
  bool head = true;
  for (std::size_t k = 0; k < s.size();) {
    dest.push_back({next_code_point(s, k), head ? 0 : 1});
    head = false;
  }
  dest.push_back({first, 1});
  transform_range(0, i, dest, 0);
}

void NormalizedString::replace(const Matches& matches, std::string_view content) {
  // Equivalent to transform_range(match, content as insertions, all of the
  // match removed): every new character aligns with the match's last byte.
  bool any = false;
  for (const Match& m : matches) any |= m.is_match;
  if (!any) return;
  std::string text;
  std::vector<Align> aligns;
  text.reserve(normalized_.size() + content.size());
  aligns.reserve(normalized_.size() + content.size());
  for (const Match& m : matches) {
    if (!m.is_match) {
      text.append(normalized_, m.begin, m.end - m.begin);
      aligns.insert(aligns.end(), alignments_.begin() + static_cast<std::ptrdiff_t>(m.begin),
                    alignments_.begin() + static_cast<std::ptrdiff_t>(m.end));
      continue;
    }
    const Align align = m.end >= 1 ? alignments_[m.end - 1] : Align{0, 0};
    text.append(content);
    aligns.insert(aligns.end(), content.size(), align);
  }
  normalized_ = std::move(text);
  alignments_ = std::move(aligns);
}

void NormalizedString::lowercase() {
  bool ascii = true;
  for (char ch : normalized_) ascii &= static_cast<unsigned char>(ch) < 0x80;
  if (ascii) {
    // One byte for one byte: the alignments do not move.
    for (char& ch : normalized_) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
    }
    return;
  }
  std::vector<CharChange> dest;
  dest.reserve(normalized_.size());
  std::string lower;
  for (std::size_t i = 0; i < normalized_.size();) {
    const char32_t c = next_code_point(normalized_, i);
    lower.clear();
    append_lowercase(lower, c);
    bool head = true;
    for (std::size_t k = 0; k < lower.size();) {
      dest.push_back({next_code_point(lower, k), head ? 0 : 1});
      head = false;
    }
  }
  transform(dest, 0);
}

void NormalizedString::normalize(NormalizationForm form) {
  if (is_normalized(form, normalized_)) return;
  // Chunk by chunk (a starter and its combining marks): within a chunk the
  // first output characters replace input ones one for one, extra output
  // characters are insertions, and a shorter output absorbs the rest.
  std::vector<CharChange> dest;
  dest.reserve(normalized_.size() + 8);
  std::u32string chunk;
  auto flush = [&]() {
    if (chunk.empty()) return;
    const std::u32string out = normalize_chunk(form, chunk);
    const std::size_t n_in = chunk.size(), n_out = out.size();
    for (std::size_t k = 0; k < n_out; ++k) {
      int change = k < n_in ? 0 : 1;
      if (k + 1 == n_out && n_out < n_in) change = -static_cast<int>(n_in - n_out);
      dest.push_back({out[k], change});
    }
    chunk.clear();
  };
  for (std::size_t i = 0; i < normalized_.size();) {
    const char32_t c = next_code_point(normalized_, i);
    if (!chunk.empty() && has_boundary_before(form, c)) flush();
    chunk.push_back(c);
  }
  flush();
  transform(dest, 0);
}

void NormalizedString::strip(bool left, bool right) {
  std::size_t b = 0, e = normalized_.size();
  std::size_t leading = 0;
  if (left) {
    for (std::size_t i = 0; i < normalized_.size();) {
      if (!is_whitespace(next_code_point(normalized_, i))) break;
      b = i;
      ++leading;
    }
  }
  if (right) {
    while (e > b) {
      std::size_t s = e - 1;
      while (s > b && (static_cast<unsigned char>(normalized_[s]) & 0xC0) == 0x80) --s;
      std::size_t k = s;
      if (!is_whitespace(next_code_point(normalized_, k))) break;
      e = s;
    }
  }
  if (b == 0 && e == normalized_.size()) return;
  std::vector<CharChange> dest;
  for (std::size_t i = b; i < e;) dest.push_back({next_code_point(normalized_, i), 0});
  transform(dest, leading);
}

void NormalizedString::map_bytes(const std::array<char32_t, 256>& table) {
  std::string text;
  std::vector<Align> aligns;
  text.reserve(normalized_.size() * 2);
  aligns.reserve(normalized_.size() * 2);
  for (std::size_t i = 0; i < normalized_.size();) {
    const std::size_t len = utf8_length(static_cast<unsigned char>(normalized_[i]));
    for (std::size_t k = 0; k < len; ++k) {
      // The first byte replaces the character, the others are insertions
      // that take the alignment of the byte before them.
      const Align align = k == 0 ? alignments_[i] : alignments_[i + len - 1];
      const std::size_t before = text.size();
      append_utf8(text, table[static_cast<unsigned char>(normalized_[i + k])]);
      aligns.insert(aligns.end(), text.size() - before, align);
    }
    i += len;
  }
  normalized_ = std::move(text);
  alignments_ = std::move(aligns);
}

NormalizedString NormalizedString::slice(std::size_t begin, std::size_t end) const {
  NormalizedString out;
  out.normalized_.assign(normalized_, begin, end - begin);
  out.alignments_.assign(alignments_.begin() + static_cast<std::ptrdiff_t>(begin),
                         alignments_.begin() + static_cast<std::ptrdiff_t>(end));
  if (begin < end) {
    out.original_shift_ = alignments_[begin].begin;
  } else if (begin < alignments_.size()) {
    out.original_shift_ = alignments_[begin].begin;
  } else {
    out.original_shift_ = alignments_.empty() ? original_shift_ : alignments_.back().end;
  }
  return out;
}

std::vector<NormalizedString> NormalizedString::split(const Matches& matches, SplitBehavior behavior) const {
  struct Piece {
    std::size_t begin, end;
    bool remove;
  };
  std::vector<Piece> pieces;
  pieces.reserve(matches.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Match& m : matches) pieces.push_back({m.begin, m.end, false});
      break;
    case SplitBehavior::kRemoved:
      for (const Match& m : matches) pieces.push_back({m.begin, m.end, m.is_match});
      break;
    case SplitBehavior::kContiguous: {
      bool previous = false;
      for (const Match& m : matches) {
        if (m.is_match == previous && !pieces.empty()) {
          pieces.back().end = m.end;
        } else {
          pieces.push_back({m.begin, m.end, false});
        }
        previous = m.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous = false;
      for (const Match& m : matches) {
        if (m.is_match && !previous && !pieces.empty()) {
          pieces.back().end = m.end;
        } else {
          pieces.push_back({m.begin, m.end, false});
        }
        previous = m.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous = false;
      for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
        if (it->is_match && !previous && !pieces.empty()) {
          pieces.back().begin = it->begin;
        } else {
          pieces.push_back({it->begin, it->end, false});
        }
        previous = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
  }
  std::vector<NormalizedString> out;
  out.reserve(pieces.size());
  for (const Piece& p : pieces) {
    if (!p.remove) out.push_back(slice(p.begin, p.end));
  }
  return out;
}

}  // namespace ptune::text
