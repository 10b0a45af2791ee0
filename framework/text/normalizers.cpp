#include "framework/text/normalizers.h"

#include "framework/core/error.h"

namespace ptune::text {

void StripAccentsNormalizer::normalize(NormalizedString& s) const {
  s.filter([](char32_t c) { return !is_combining_mark(c); });
}

void BertNormalizer::normalize(NormalizedString& s) const {
  bool ascii = true;
  for (char ch : s.get()) ascii &= static_cast<unsigned char>(ch) < 0x80;
  if (options_.clean_text) {
    // NUL, U+FFFD and control characters go; any whitespace becomes ' '.
    bool dirty = false;
    for (std::size_t i = 0; i < s.size() && !dirty;) {
      const char32_t c = next_code_point(s.get(), i);
      dirty = c == 0 || c == 0xFFFD || (c != ' ' && is_whitespace(c)) || (c != '\t' && c != '\n' && c != '\r' && is_other(c));
    }
    if (dirty) {
      s.filter([](char32_t c) {
        return !(c == 0 || c == 0xFFFD || (c != '\t' && c != '\n' && c != '\r' && is_other(c)));
      });
      s.map([](char32_t c) { return is_whitespace(c) ? U' ' : c; });
    }
  }
  if (options_.handle_chinese_chars && !ascii) {
    bool any = false;
    for (std::size_t i = 0; i < s.size() && !any;) any = is_chinese_char(next_code_point(s.get(), i));
    if (any) {
      std::vector<CharChange> dest;
      dest.reserve(s.size() + 16);
      for (std::size_t i = 0; i < s.size();) {
        const char32_t c = next_code_point(s.get(), i);
        if (is_chinese_char(c)) {
          dest.push_back({U' ', 0});
          dest.push_back({c, 1});
          dest.push_back({U' ', 1});
        } else {
          dest.push_back({c, 0});
        }
      }
      s.transform(dest, 0);
    }
  }
  if (options_.strip_accents.value_or(options_.lowercase) && !ascii) {
    s.normalize(NormalizationForm::kNfd);
    s.filter([](char32_t c) { return !is_mark_nonspacing(c); });
  }
  if (options_.lowercase) s.lowercase();
}

PrecompiledNormalizer::PrecompiledNormalizer(std::string_view charsmap, std::string_view what) {
  auto u32_at = [&](std::size_t i) {
    const auto* b = reinterpret_cast<const unsigned char*>(charsmap.data() + i);
    return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  };
  PTUNE_CHECK(charsmap.size() >= 4, "{}: a precompiled charsmap of {} bytes (no trie size)", what, charsmap.size());
  const std::size_t trie_bytes = u32_at(0);
  PTUNE_CHECK(trie_bytes % 4 == 0 && trie_bytes >= 4 && 4 + trie_bytes <= charsmap.size(),
              "{}: the precompiled charsmap's trie of {} bytes does not fit its {} bytes", what, trie_bytes,
              charsmap.size());
  trie_.resize(trie_bytes / 4);
  for (std::size_t i = 0; i < trie_.size(); ++i) trie_[i] = u32_at(4 + 4 * i);
  pool_ = std::string(charsmap.substr(4 + trie_bytes));
  check_utf8(pool_, fmt::format("{}: the precompiled charsmap's replacements", what));
}

std::optional<std::string_view> PrecompiledNormalizer::transform(std::string_view chunk) const {
  // darts-clone units: bits 0–7 + 31 the label, bit 8 "has a leaf", bits
  // 10–31 the offset (shifted by 8 when bit 9 is set); a leaf's value is its
  // low 31 bits. A walk that leaves the array is a miss (a malformed map).
  const auto offset = [](uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
  std::size_t pos = offset(trie_[0]);
  for (const char ch : chunk) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0) break;  // keys are C strings
    pos ^= c;
    if (pos >= trie_.size()) return std::nullopt;
    const uint32_t unit = trie_[pos];
    if ((unit & ((1u << 31) | 0xFFu)) != c) return std::nullopt;
    pos ^= offset(unit);
    if (pos >= trie_.size()) return std::nullopt;
    if ((unit >> 8) & 1) {  // the shortest key that prefixes chunk
      const std::size_t begin = trie_[pos] & ((1u << 31) - 1);
      if (begin > pool_.size()) return std::nullopt;
      const std::size_t end = pool_.find('\0', begin);
      return std::string_view(pool_).substr(begin, (end == std::string::npos ? pool_.size() : end) - begin);
    }
  }
  return std::nullopt;
}

void PrecompiledNormalizer::normalize(NormalizedString& s) const {
  // (character, change) per output character, as NormalizedString::transform
  // takes them: a replacement's characters are 0, except that extra ones
  // are +1 and the last takes the removed count.
  std::vector<CharChange> dest;
  dest.reserve(s.size());
  bool modified = false;
  auto replace = [&](std::string_view old_part, std::string_view new_part) {
    modified = true;
    const int diff = int(count_code_points(new_part)) - int(count_code_points(old_part));
    for (std::size_t i = 0; i < new_part.size();) dest.push_back({next_code_point(new_part, i), 0});
    if (diff > 0) {
      for (std::size_t k = 0; k < std::size_t(diff); ++k) dest[dest.size() - 1 - k].change = 1;
    } else if (diff < 0 && !dest.empty()) {
      dest.back().change += diff;
    }
  };
  const std::string& text = s.get();
  const std::vector<std::size_t> bounds = grapheme_boundaries(text);
  for (std::size_t g = 0; g + 1 < bounds.size(); ++g) {
    const std::string_view grapheme = std::string_view(text).substr(bounds[g], bounds[g + 1] - bounds[g]);
    if (grapheme.size() < 6) {
      if (const auto norm = transform(grapheme)) {
        replace(grapheme, *norm);
        continue;
      }
    }
    for (std::size_t i = 0; i < grapheme.size();) {
      const std::size_t begin = i;
      const char32_t c = next_code_point(grapheme, i);
      const std::string_view part = grapheme.substr(begin, i - begin);
      if (const auto norm = transform(part)) replace(part, *norm);
      else dest.push_back({c, 0});
    }
  }
  if (modified) s.transform(dest, 0);
}

namespace {

// RFC 4648 base64 (how tokenizer.json stores byte strings); `what` names
// the key in errors.
std::string base64_decode(std::string_view in, const JsonView& what) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '=') {
      for (std::size_t j = i; j < in.size(); ++j)
        if (in[j] != '=') what.fail(fmt::format("invalid base64: '{}' after padding at {}", in[j], j));
      break;
    }
    const int v = value(in[i]);
    if (v < 0) what.fail(fmt::format("invalid base64: byte {} at {}", int(static_cast<unsigned char>(in[i])), i));
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  return out;
}

Pattern make_pattern(const JsonView& j) {
  if (const auto lit = j.find("String")) return Pattern::literal(lit->str());
  if (const auto re = j.find("Regex")) return Pattern::regex(re->str());
  j.fail("expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const JsonView& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.at("type").str();
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfkd);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(j.bool_or("strip_left", true), j.bool_or("strip_right", true));
  }
  if (type == "BertNormalizer") {
    BertNormalizerOptions o;
    o.clean_text = j.bool_or("clean_text", true);
    o.handle_chinese_chars = j.bool_or("handle_chinese_chars", true);
    if (const auto sa = j.find("strip_accents")) o.strip_accents = sa->boolean();
    o.lowercase = j.bool_or("lowercase", true);
    return std::make_unique<BertNormalizer>(o);
  }
  if (type == "Replace") return std::make_unique<ReplaceNormalizer>(make_pattern(j.at("pattern")), j.at("content").str());
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend").str());
  if (type == "Precompiled") {
    const JsonView map = j.at("precompiled_charsmap");
    return std::make_unique<PrecompiledNormalizer>(base64_decode(map.str(), map),
                                                   fmt::format("{}: key '{}'", map.origin(), map.path()));
  }
  if (type == "Sequence") {
    const JsonView list = j.at("normalizers");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (auto n = make_normalizer(list.at(i))) steps.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  j.at("type").fail(fmt::format("unsupported normalizer type '{}'", type));
}

Pattern parse_pattern(const JsonView& j) { return make_pattern(j); }

}  // namespace ptune::text
