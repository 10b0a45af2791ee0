#include "framework/text/encoding.h"

#include <algorithm>

#include "framework/core/error.h"

namespace ptune::text {

void Encoding::push_back(uint32_t id, uint32_t type_id, std::string token, Offsets off, bool special,
                         int32_t sequence) {
  ids.push_back(id);
  type_ids.push_back(type_id);
  tokens.push_back(std::move(token));
  offsets.push_back(off);
  attention_mask.push_back(1);
  special_tokens_mask.push_back(special ? 1 : 0);
  sequence_ids.push_back(sequence);
}

void Encoding::append(const Encoding& o) {
  ids.insert(ids.end(), o.ids.begin(), o.ids.end());
  type_ids.insert(type_ids.end(), o.type_ids.begin(), o.type_ids.end());
  tokens.insert(tokens.end(), o.tokens.begin(), o.tokens.end());
  offsets.insert(offsets.end(), o.offsets.begin(), o.offsets.end());
  attention_mask.insert(attention_mask.end(), o.attention_mask.begin(), o.attention_mask.end());
  special_tokens_mask.insert(special_tokens_mask.end(), o.special_tokens_mask.begin(), o.special_tokens_mask.end());
  sequence_ids.insert(sequence_ids.end(), o.sequence_ids.begin(), o.sequence_ids.end());
}

namespace {
template <class T>
void keep(std::vector<T>& v, std::size_t n, bool from_left) {
  if (v.size() <= n) return;
  if (from_left) {
    v.erase(v.begin(), v.end() - static_cast<std::ptrdiff_t>(n));
  } else {
    v.resize(n);
  }
}
}  // namespace

void Encoding::truncate(std::size_t max_length, bool from_left) {
  keep(ids, max_length, from_left);
  keep(type_ids, max_length, from_left);
  keep(tokens, max_length, from_left);
  keep(offsets, max_length, from_left);
  keep(attention_mask, max_length, from_left);
  keep(special_tokens_mask, max_length, from_left);
  keep(sequence_ids, max_length, from_left);
}

void truncate_encodings(Encoding& first, Encoding* second, const Truncation& t) {
  const bool left = t.direction == Side::kLeft;
  if (t.max_length == 0) {
    first.truncate(0, left);
    if (second != nullptr) second->truncate(0, left);
    return;
  }
  const std::size_t total = first.size() + (second ? second->size() : 0);
  if (total <= t.max_length) return;
  const std::size_t to_remove = total - t.max_length;
  switch (t.strategy) {
    case TruncationStrategy::kLongestFirst: {
      if (second == nullptr) {
        first.truncate(total - to_remove, left);
        return;
      }
      // The shorter input keeps its length when it fits in half; otherwise
      // both get half (the second one the odd token).
      std::size_t n1 = first.size(), n2 = second->size();
      const bool swap = n1 > n2;
      if (swap) std::swap(n1, n2);
      if (n1 > t.max_length) {
        n2 = n1;
      } else {
        n2 = std::max(n1, t.max_length - n1);
      }
      if (n1 + n2 > t.max_length) {
        n1 = t.max_length / 2;
        n2 = n1 + t.max_length % 2;
      }
      if (swap) std::swap(n1, n2);
      first.truncate(n1, left);
      second->truncate(n2, left);
      return;
    }
    case TruncationStrategy::kOnlyFirst:
    case TruncationStrategy::kOnlySecond: {
      Encoding* target = &first;
      if (t.strategy == TruncationStrategy::kOnlySecond) {
        PTUNE_CHECK(second != nullptr, "truncation only_second: the input has no second sequence");
        target = second;
      }
      PTUNE_CHECK(target->size() > to_remove,
                  "truncation: sequence to truncate too short to respect the provided max_length {}", t.max_length);
      target->truncate(target->size() - to_remove, left);
      return;
    }
  }
}

void pad_encoding(Encoding& e, const Padding& p) {
  std::size_t target = p.length.value_or(e.size());
  if (p.pad_to_multiple_of && *p.pad_to_multiple_of > 0 && target % *p.pad_to_multiple_of != 0) {
    target += *p.pad_to_multiple_of - target % *p.pad_to_multiple_of;
  }
  if (e.size() >= target) return;
  const std::size_t n = target - e.size();
  Encoding pad;
  for (std::size_t i = 0; i < n; ++i) {
    pad.push_back(p.pad_id, p.pad_type_id, p.pad_token, {0, 0}, true, -1);
    pad.attention_mask.back() = 0;
  }
  if (p.direction == Side::kRight) {
    e.append(pad);
  } else {
    pad.append(e);
    e = std::move(pad);
  }
}

}  // namespace ptune::text
