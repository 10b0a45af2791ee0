#include "framework/text/regex.h"

#include <unicode/regex.h>
#include <unicode/utext.h>

#include "framework/core/error.h"

namespace ptune::text {

struct Regex::Compiled {
  std::unique_ptr<icu::RegexPattern> pattern;
};

Regex::Regex(std::string_view pattern) : pattern_(pattern), compiled_(std::make_unique<Compiled>()) {
  UErrorCode status = U_ZERO_ERROR;
  UParseError parse_error;
  const icu::UnicodeString u =
      icu::UnicodeString::fromUTF8(icu::StringPiece(pattern.data(), static_cast<int32_t>(pattern.size())));
  compiled_->pattern.reset(icu::RegexPattern::compile(u, 0, parse_error, status));
  PTUNE_CHECK(U_SUCCESS(status), "invalid regex '{}': {} at offset {}", pattern, u_errorName(status),
              parse_error.offset);
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

Matches Regex::find_matches(std::string_view s) const {
  Matches out;
  if (s.empty()) {
    out.push_back({0, 0, false});
    return out;
  }
  UErrorCode status = U_ZERO_ERROR;
  // A UTF-8 UText: ICU's native indices are then our byte offsets.
  UText* text = utext_openUTF8(nullptr, s.data(), static_cast<int64_t>(s.size()), &status);
  std::unique_ptr<icu::RegexMatcher> matcher(compiled_->pattern->matcher(status));
  PTUNE_CHECK(U_SUCCESS(status), "regex '{}': {}", pattern_, u_errorName(status));
  matcher->reset(text);
  std::size_t prev = 0;
  while (matcher->find(status) && U_SUCCESS(status)) {
    const auto b = static_cast<std::size_t>(matcher->start64(status));
    const auto e = static_cast<std::size_t>(matcher->end64(status));
    if (prev != b) out.push_back({prev, b, false});
    out.push_back({b, e, true});
    prev = e;
  }
  utext_close(text);
  PTUNE_CHECK(U_SUCCESS(status), "regex '{}' failed: {}", pattern_, u_errorName(status));
  if (prev != s.size()) out.push_back({prev, s.size(), false});
  return out;
}

Pattern Pattern::literal(std::string text) {
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

Pattern Pattern::regex(std::string_view expression) {
  Pattern p;
  p.regex_ = std::make_unique<Regex>(expression);
  return p;
}

Matches Pattern::find_matches(std::string_view s) const {
  return regex_ ? regex_->find_matches(s) : find_literal_matches(s, literal_);
}

namespace {

enum class Cls : uint8_t { kLetter, kNumber, kSpace, kOther };

Cls classify(char32_t c) {
  if (is_letter(c)) return Cls::kLetter;
  if (is_numeric(c)) return Cls::kNumber;
  if (is_whitespace(c)) return Cls::kSpace;
  return Cls::kOther;
}

struct Cursor {
  std::string_view s;
  // Decoded class and end of the character at byte i.
  Cls cls_at(std::size_t i, std::size_t& next) const {
    next = i;
    return classify(next_code_point(s, next));
  }
};

// End of the run of characters of class `cls` that starts at i.
std::size_t run_end(const Cursor& cur, std::size_t i, Cls cls) {
  while (i < cur.s.size()) {
    std::size_t next;
    if (cur.cls_at(i, next) != cls) break;
    i = next;
  }
  return i;
}

}  // namespace

Matches find_gpt2_matches(std::string_view s) {
  Matches out;
  if (s.empty()) {
    out.push_back({0, 0, false});
    return out;
  }
  const Cursor cur{s};
  std::size_t prev = 0;
  auto emit = [&](std::size_t b, std::size_t e) {
    if (prev != b) out.push_back({prev, b, false});
    out.push_back({b, e, true});
    prev = e;
  };
  std::size_t i = 0;
  while (i < s.size()) {
    // 's 't 're 've 'm 'll 'd
    if (s[i] == '\'' && i + 1 < s.size()) {
      const char a = s[i + 1];
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < s.size()) {
        const char b = s[i + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
          emit(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    std::size_t next;
    const Cls c0 = cur.cls_at(i, next);
    // ` ?X+` for X in letters, numbers, other: an optional plain space.
    std::size_t start = i;
    Cls cls = c0;
    std::size_t body = i;
    if (s[i] == ' ' && next < s.size()) {
      std::size_t after;
      const Cls c1 = cur.cls_at(next, after);
      if (c1 != Cls::kSpace) {
        cls = c1;
        body = next;
      }
    }
    if (cls != Cls::kSpace) {
      const std::size_t e = run_end(cur, body, cls);
      emit(start, e);
      i = e;
      continue;
    }
    // \s+(?!\S) then \s+: a whitespace run gives back its last character
    // when a non-space follows, unless that leaves nothing.
    const std::size_t e = run_end(cur, i, Cls::kSpace);
    if (e == s.size()) {
      emit(i, e);
      i = e;
      continue;
    }
    std::size_t last = e - 1;
    while ((static_cast<unsigned char>(s[last]) & 0xC0) == 0x80) --last;
    if (last > i) {
      emit(i, last);
      i = last;
    } else {
      emit(i, e);
      i = e;
    }
  }
  if (prev != s.size()) out.push_back({prev, s.size(), false});
  return out;
}

Matches find_word_matches(std::string_view s) {
  Matches out;
  if (s.empty()) {
    out.push_back({0, 0, false});
    return out;
  }
  std::size_t prev = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t next = i;
    const char32_t c = next_code_point(s, next);
    if (is_whitespace(c)) {
      i = next;
      continue;
    }
    const bool word = is_word_char(c);
    std::size_t e = next;
    while (e < s.size()) {
      std::size_t n2 = e;
      const char32_t d = next_code_point(s, n2);
      if (word ? !is_word_char(d) : (is_word_char(d) || is_whitespace(d))) break;
      e = n2;
    }
    if (prev != i) out.push_back({prev, i, false});
    out.push_back({i, e, true});
    prev = e;
    i = e;
  }
  if (prev != s.size()) out.push_back({prev, s.size(), false});
  return out;
}

}  // namespace ptune::text
