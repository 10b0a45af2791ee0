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

namespace {

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
