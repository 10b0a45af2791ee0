#include "framework/text/pre_tokenizers.h"

#include "framework/core/error.h"
#include "framework/text/byte_level.h"
#include "framework/text/normalizers.h"

namespace ptune::text {

void ByteLevelPreTokenizer::pre_tokenize(PreTokenizedString& s) const {
  s.split([&](NormalizedString&& n, std::vector<Split>& out) {
    // Per piece, as HF does: text after an added token gets its own space.
    if (add_prefix_space_ && !n.get().starts_with(' ')) n.prepend(" ");
    if (!use_regex_) {
      out.push_back({std::move(n), std::nullopt});
      return;
    }
    for (NormalizedString& piece : n.split(find_gpt2_matches(n.get()), SplitBehavior::kIsolated)) {
      out.push_back({std::move(piece), std::nullopt});
    }
  });
  s.normalize([](NormalizedString& n) { n.map_bytes(kByteToChar); });
}

void BertPreTokenizer::pre_tokenize(PreTokenizedString& s) const {
  s.split_normalized([](NormalizedString&& n) {
    return n.split(find_char_matches(n.get(), is_whitespace), SplitBehavior::kRemoved);
  });
  s.split_normalized([](NormalizedString&& n) {
    return n.split(find_char_matches(n.get(), is_punctuation), SplitBehavior::kIsolated);
  });
}

void WhitespacePreTokenizer::pre_tokenize(PreTokenizedString& s) const {
  s.split_normalized([](NormalizedString&& n) {
    Matches m = find_word_matches(n.get());
    invert_matches(m);
    return n.split(m, SplitBehavior::kRemoved);
  });
}

void WhitespaceSplitPreTokenizer::pre_tokenize(PreTokenizedString& s) const {
  s.split_normalized([](NormalizedString&& n) {
    return n.split(find_char_matches(n.get(), is_whitespace), SplitBehavior::kRemoved);
  });
}

void CharDelimiterSplitPreTokenizer::pre_tokenize(PreTokenizedString& s) const {
  s.split_normalized([&](NormalizedString&& n) {
    return n.split(find_char_matches(n.get(), [&](char32_t c) { return c == delimiter_; }), SplitBehavior::kRemoved);
  });
}

MetaspacePreTokenizer::MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
    : replacement_(replacement), scheme_(scheme), split_(split) {
  append_utf8(replacement_utf8_, replacement);
}

void MetaspacePreTokenizer::pre_tokenize(PreTokenizedString& s) const {
  s.split_normalized([&](NormalizedString&& n) {
    n.replace(find_char_matches(n.get(), [](char32_t c) { return c == U' '; }), replacement_utf8_);
    const bool starts = n.get().starts_with(replacement_utf8_);
    if (scheme_ == PrependScheme::kAlways && !starts) n.prepend(replacement_utf8_);
    if (scheme_ == PrependScheme::kFirst && !starts && n.original_shift() == 0) n.prepend(replacement_utf8_);
    if (split_) {
      return n.split(find_char_matches(n.get(), [&](char32_t c) { return c == replacement_; }),
                     SplitBehavior::kMergedWithNext);
    }
    std::vector<NormalizedString> out;
    out.push_back(std::move(n));
    return out;
  });
}

void SplitPreTokenizer::pre_tokenize(PreTokenizedString& s) const {
  s.split_normalized([&](NormalizedString&& n) {
    Matches m = pattern_.find_matches(n.get());
    if (invert_) invert_matches(m);
    return n.split(m, behavior_);
  });
}

void DigitsPreTokenizer::pre_tokenize(PreTokenizedString& s) const {
  const SplitBehavior b = individual_digits_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
  s.split_normalized([&](NormalizedString&& n) { return n.split(find_char_matches(n.get(), is_numeric), b); });
}

void PunctuationPreTokenizer::pre_tokenize(PreTokenizedString& s) const {
  s.split_normalized(
      [&](NormalizedString&& n) { return n.split(find_char_matches(n.get(), is_punctuation), behavior_); });
}

SplitBehavior parse_split_behavior(const JsonView& j) {
  const std::string b = j.str();
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  j.fail(fmt::format("unknown split behavior '{}'", b));
}

PrependScheme parse_prepend_scheme(const JsonView& j) {
  // Older files have add_prefix_space: bool instead of prepend_scheme.
  if (const auto scheme = j.find("prepend_scheme")) {
    const std::string s = scheme->str();
    if (s == "always") return PrependScheme::kAlways;
    if (s == "first") return PrependScheme::kFirst;
    if (s == "never") return PrependScheme::kNever;
    scheme->fail(fmt::format("unknown prepend scheme '{}'", s));
  }
  return j.bool_or("add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonView& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.at("type").str();
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(j.bool_or("add_prefix_space", true), j.bool_or("use_regex", true));
  }
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPreTokenizer>();
  if (type == "CharDelimiterSplit") return std::make_unique<CharDelimiterSplitPreTokenizer>(single_char(j.at("delimiter")));
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(single_char(j.at("replacement")), parse_prepend_scheme(j),
                                                   j.bool_or("split", true));
  }
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(parse_pattern(j.at("pattern")), parse_split_behavior(j.at("behavior")),
                                               j.bool_or("invert", false));
  }
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(j.bool_or("individual_digits", false));
  if (type == "Punctuation") {
    const auto b = j.find("behavior");
    return std::make_unique<PunctuationPreTokenizer>(b ? parse_split_behavior(*b) : SplitBehavior::kIsolated);
  }
  if (type == "Sequence") {
    const JsonView list = j.at("pretokenizers");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (auto p = make_pre_tokenizer(list.at(i))) steps.push_back(std::move(p));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  j.at("type").fail(fmt::format("unsupported pre-tokenizer type '{}'", type));
}

}  // namespace ptune::text
