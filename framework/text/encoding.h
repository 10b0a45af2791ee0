// What encode() returns, and the truncation and padding applied to it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/text/normalized_string.h"

namespace ptune::text {

// One entry per token; offsets are bytes of the text the token came from
// (the first or the second text of a pair, see sequence_ids), (0, 0) for
// special tokens and padding.
struct Encoding {
  std::vector<uint32_t> ids;
  std::vector<uint32_t> type_ids;
  std::vector<std::string> tokens;
  std::vector<Offsets> offsets;
  std::vector<uint32_t> attention_mask;
  std::vector<uint32_t> special_tokens_mask;
  std::vector<int32_t> sequence_ids;  // 0 or 1; -1 for special tokens and padding

  std::size_t size() const { return ids.size(); }
  void push_back(uint32_t id, uint32_t type_id, std::string token, Offsets offsets, bool special, int32_t sequence);
  void append(const Encoding& other);
  // Keeps max_length tokens, dropping from the right (or the left).
  void truncate(std::size_t max_length, bool from_left);
};

enum class TruncationStrategy { kLongestFirst, kOnlyFirst, kOnlySecond };
enum class Side { kRight, kLeft };

struct Truncation {
  std::size_t max_length = 512;
  TruncationStrategy strategy = TruncationStrategy::kLongestFirst;
  Side direction = Side::kRight;
  std::size_t stride = 0;  // kept for round trips; overflowing windows are not produced
};

struct Padding {
  std::optional<std::size_t> length;  // fixed length; unset: the batch's longest (a single encoding: itself)
  Side direction = Side::kRight;
  std::optional<std::size_t> pad_to_multiple_of;
  uint32_t pad_id = 0;
  uint32_t pad_type_id = 0;
  std::string pad_token = "[PAD]";
};

// HF's truncate_encodings; n_added: special tokens the post-processor will add.
void truncate_encodings(Encoding& first, Encoding* second, const Truncation& t);
void pad_encoding(Encoding& e, const Padding& p);

}  // namespace ptune::text
