// UTF-8 and Unicode character properties for the tokenizers, on top of ICU.
//
// The predicates mirror the ones the Rust `tokenizers` crate uses (Rust's
// `char` methods, `unicode_categories`, onig's `\s \p{L} \p{N}`), so that
// every pipeline stage splits and filters exactly where Hugging Face does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ptune::text {

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i.
inline char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  if (b0 < 0xE0) {
    const char32_t c = (char32_t(b0 & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
    i += 2;
    return c;
  }
  if (b0 < 0xF0) {
    const char32_t c = (char32_t(b0 & 0x0F) << 12) | (char32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
                       (static_cast<unsigned char>(s[i + 2]) & 0x3F);
    i += 3;
    return c;
  }
  const char32_t c = (char32_t(b0 & 0x07) << 18) | (char32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 12) |
                     (char32_t(static_cast<unsigned char>(s[i + 2]) & 0x3F) << 6) |
                     (static_cast<unsigned char>(s[i + 3]) & 0x3F);
  i += 4;
  return c;
}

// Byte length of the UTF-8 sequence that starts with lead byte b.
inline std::size_t utf8_length(unsigned char b) {
  return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

inline std::size_t utf8_length(char32_t c) {
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

void append_utf8(std::string& out, char32_t c);

// Byte offset of the first invalid UTF-8 sequence in s, or npos when s is valid.
std::size_t find_invalid_utf8(std::string_view s);

// Throws ptune::Error naming the offending byte when s is not valid UTF-8.
void check_utf8(std::string_view s, std::string_view what);

// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD.
std::string utf8_lossy(std::string_view bytes);

std::size_t count_code_points(std::string_view s);

// Byte offsets of the extended grapheme cluster boundaries of valid UTF-8 s
// (UAX #29, as Rust's unicode-segmentation `graphemes(true)`): 0, …, s.size().
std::vector<std::size_t> grapheme_boundaries(std::string_view s);

// Rust's char::is_whitespace, onig's \s: the White_Space property.
bool is_whitespace(char32_t c);
// \p{L}
bool is_letter(char32_t c);
// \p{N}, Rust's char::is_numeric
bool is_numeric(char32_t c);
// ASCII punctuation or any P* category (BERT's and the Punctuation pre-tokenizer's test).
bool is_punctuation(char32_t c);
// Cc, Cf, Co, Cs: `unicode_categories::is_other` as BertNormalizer uses it.
bool is_other(char32_t c);
// Any mark (Mn, Mc, Me): what StripAccents removes. HF's filter is
// unicode-normalization's is_combining_mark, so spacing vowel signs of
// Indic scripts go too, not only accents.
bool is_combining_mark(char32_t c);
// Mn only: what BertNormalizer's accent stripping removes.
bool is_mark_nonspacing(char32_t c);
// \w of Rust's regex and onig: Alphabetic, M, Nd, Pc, Join_Control.
bool is_word_char(char32_t c);
// The CJK blocks that BertNormalizer surrounds with spaces.
bool is_chinese_char(char32_t c);

// Rust's char::to_lowercase (full, context-free mapping), appended as UTF-8.
void append_lowercase(std::string& out, char32_t c);

enum class NormalizationForm { kNfc, kNfd, kNfkc, kNfkd };

// The normalization of one chunk (a starter and what follows it), as UTF-8.
std::u32string normalize_chunk(NormalizationForm form, std::u32string_view chunk);
// Whether c starts a new normalization chunk (ICU's hasBoundaryBefore).
bool has_boundary_before(NormalizationForm form, char32_t c);
// Whether s (UTF-8) is already in the given form.
bool is_normalized(NormalizationForm form, std::string_view s);

}  // namespace ptune::text
