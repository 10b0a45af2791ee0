// GPT-2's byte-to-character map: every byte becomes a printable character
// so that byte-level BPE vocabularies are plain strings ("Ġ" is the space).
#pragma once

#include <array>
#include <cstdint>

namespace ptune::text {

// Printable Latin-1 bytes map to themselves, the other bytes in order to
// U+0100, U+0101, …
constexpr std::array<char32_t, 256> make_byte_to_char() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

inline constexpr std::array<char32_t, 256> kByteToChar = make_byte_to_char();

// The byte behind a byte-level character, or -1 for any other character.
inline int char_to_byte(char32_t c) {
  if (c < 256) {
    const bool printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
    return printable ? static_cast<int>(c) : -1;
  }
  for (int b = 0; b < 256; ++b) {
    if (kByteToChar[b] == c) return b;
  }
  return -1;
}

}  // namespace ptune::text
