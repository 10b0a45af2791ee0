#include "framework/text/unicode.h"

#include <unicode/brkiter.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utext.h>

#include <memory>

#include "framework/core/error.h"

namespace ptune::text {

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

namespace {

// Length of the valid UTF-8 prefix of the sequence at s[i] (Unicode table
// 3-7), and whether it is complete: what from_utf8_lossy needs.
struct Utf8Step {
  std::size_t valid = 0;
  bool complete = false;
};

Utf8Step utf8_step(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {1, true};
  std::size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {0, false};
  }
  std::size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= s.size()) return {k, false};
    const auto b = static_cast<unsigned char>(s[i + k]);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return {k, false};
  }
  return {k, true};
}

int32_t category(char32_t c) { return u_charType(static_cast<UChar32>(c)); }

const icu::Normalizer2& normalizer(NormalizationForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalizationForm::kNfc: n = icu::Normalizer2::getNFCInstance(status); break;
    case NormalizationForm::kNfd: n = icu::Normalizer2::getNFDInstance(status); break;
    case NormalizationForm::kNfkc: n = icu::Normalizer2::getNFKCInstance(status); break;
    case NormalizationForm::kNfkd: n = icu::Normalizer2::getNFKDInstance(status); break;
  }
  PTUNE_CHECK(U_SUCCESS(status) && n != nullptr, "ICU normalizer unavailable: {}", u_errorName(status));
  return *n;
}

}  // namespace

std::size_t find_invalid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = utf8_step(s, i);
    if (!step.complete) return i;
    i += step.valid;
  }
  return std::string_view::npos;
}

void check_utf8(std::string_view s, std::string_view what) {
  const std::size_t bad = find_invalid_utf8(s);
  PTUNE_CHECK(bad == std::string_view::npos,
              "{}: input is not valid UTF-8 (byte 0x{:02X} at offset {}); Hugging Face tokenizers only accept "
              "valid UTF-8 text",
              what, static_cast<unsigned char>(s[bad]), bad);
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    const Utf8Step step = utf8_step(bytes, i);
    if (step.complete) {
      out.append(bytes.substr(i, step.valid));
      i += step.valid;
    } else {
      out.append("\xEF\xBF\xBD");
      i += step.valid == 0 ? 1 : step.valid;
    }
  }
  return out;
}

std::size_t count_code_points(std::string_view s) {
  std::size_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

bool is_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_isUWhiteSpace(static_cast<UChar32>(c));
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0;
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0;
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0;
}

bool is_other(char32_t c) {
  const int32_t cat = category(c);
  return cat == U_CONTROL_CHAR || cat == U_FORMAT_CHAR || cat == U_PRIVATE_USE_CHAR || cat == U_SURROGATE;
}

bool is_mark_nonspacing(char32_t c) { return c >= 0x300 && category(c) == U_NON_SPACING_MARK; }

bool is_combining_mark(char32_t c) {
  return c >= 0x300 && (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_M_MASK) != 0;
}

bool is_word_char(char32_t c) {
  if (c < 0x80) return is_letter(c) || is_numeric(c) || c == '_';
  const auto u = static_cast<UChar32>(c);
  return u_hasBinaryProperty(u, UCHAR_ALPHABETIC) || (U_GET_GC_MASK(u) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) ||
         u_hasBinaryProperty(u, UCHAR_JOIN_CONTROL);
}

bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void append_lowercase(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  // One code point, root locale: SpecialCasing's unconditional mappings
  // only (İ → i̇), as Rust's char::to_lowercase.
  UChar src[2];
  int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
  UChar dst[8];
  UErrorCode status = U_ZERO_ERROR;
  const int32_t n = u_strToLower(dst, 8, src, src_len, "", &status);
  if (U_FAILURE(status)) {
    append_utf8(out, c);
    return;
  }
  for (int32_t i = 0; i < n;) {
    UChar32 cp;
    U16_NEXT(dst, i, n, cp);
    append_utf8(out, static_cast<char32_t>(cp));
  }
}

std::u32string normalize_chunk(NormalizationForm form, std::u32string_view chunk) {
  icu::UnicodeString src;
  for (char32_t c : chunk) src.append(static_cast<UChar32>(c));
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString dst = normalizer(form).normalize(src, status);
  PTUNE_CHECK(U_SUCCESS(status), "ICU normalization failed: {}", u_errorName(status));
  std::u32string out;
  for (int32_t i = 0; i < dst.length();) {
    const UChar32 cp = dst.char32At(i);
    out.push_back(static_cast<char32_t>(cp));
    i += U16_LENGTH(cp);
  }
  return out;
}

bool has_boundary_before(NormalizationForm form, char32_t c) {
  return normalizer(form).hasBoundaryBefore(static_cast<UChar32>(c));
}

bool is_normalized(NormalizationForm form, std::string_view s) {
  bool ascii = true;
  for (char ch : s) ascii &= static_cast<unsigned char>(ch) < 0x80;
  if (ascii) return true;
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  const bool yes = normalizer(form).isNormalized(u, status);
  return U_SUCCESS(status) && yes;
}

std::vector<std::size_t> grapheme_boundaries(std::string_view s) {
  UErrorCode status = U_ZERO_ERROR;
  // A UTF-8 UText: the iterator's positions are byte offsets into s.
  UText* text = utext_openUTF8(nullptr, s.data(), int64_t(s.size()), &status);
  std::unique_ptr<icu::BreakIterator> it(icu::BreakIterator::createCharacterInstance(icu::Locale::getRoot(), status));
  PTUNE_CHECK(U_SUCCESS(status), "ICU grapheme iterator: {}", u_errorName(status));
  it->setText(text, status);
  std::vector<std::size_t> out;
  for (int32_t b = it->first(); b != icu::BreakIterator::DONE; b = it->next()) out.push_back(std::size_t(b));
  utext_close(text);
  PTUNE_CHECK(U_SUCCESS(status), "ICU grapheme iterator: {}", u_errorName(status));
  return out;
}

}  // namespace ptune::text
