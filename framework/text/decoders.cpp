#include "framework/text/decoders.h"

#include "framework/core/error.h"
#include "framework/text/byte_level.h"
#include "framework/text/normalizers.h"
#include "framework/text/unicode.h"

namespace ptune::text {

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  std::size_t prev = 0;
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, prev)) {
    out.append(s, prev, pos - prev);
    out.append(to);
    prev = pos + from.size();
  }
  if (prev == 0) return;
  out.append(s, prev, std::string::npos);
  s = std::move(out);
}

}  // namespace

void ByteLevelDecoder::decode_chain(std::vector<std::string>& tokens) const {
  // Tokens that are not all byte-level characters (added tokens) keep their
  // own bytes; the whole is then read as UTF-8, lossily.
  std::string bytes;
  for (const std::string& t : tokens) {
    const std::size_t mark = bytes.size();
    bool ok = true;
    for (std::size_t i = 0; i < t.size();) {
      const int b = char_to_byte(next_code_point(t, i));
      if (b < 0) {
        ok = false;
        break;
      }
      bytes.push_back(static_cast<char>(b));
    }
    if (!ok) {
      bytes.resize(mark);
      bytes.append(t);
    }
  }
  tokens.assign(1, utf8_lossy(bytes));
}

void WordPieceDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string& t = tokens[i];
    if (i != 0) {
      if (t.starts_with(prefix_)) {
        t.erase(0, prefix_.size());
      } else {
        t.insert(0, " ");
      }
    }
    if (cleanup_) t = cleanup_tokenization_spaces(std::move(t));
  }
}

std::string cleanup_tokenization_spaces(std::string s) {
  replace_all(s, " .", ".");
  replace_all(s, " ?", "?");
  replace_all(s, " !", "!");
  replace_all(s, " ,", ",");
  replace_all(s, " ' ", "'");
  replace_all(s, " n't", "n't");
  replace_all(s, " 'm", "'m");
  replace_all(s, " do not", " don't");
  replace_all(s, " 's", "'s");
  replace_all(s, " 've", "'ve");
  replace_all(s, " 're", "'re");
  return s;
}

void MetaspaceDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    std::string out;
    const std::string& t = tokens[i];
    for (std::size_t k = 0; k < t.size();) {
      const char32_t c = next_code_point(t, k);
      if (c == replacement_) {
        if (!(i == 0 && scheme_ != PrependScheme::kNever)) out.push_back(' ');
      } else {
        append_utf8(out, c);
      }
    }
    tokens[i] = std::move(out);
  }
}

void ByteFallbackDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::vector<std::string> out;
  out.reserve(tokens.size());
  std::string pending;  // consecutive <0xXX> bytes
  std::size_t pending_count = 0;
  auto flush = [&]() {
    if (pending_count == 0) return;
    if (find_invalid_utf8(pending) == std::string::npos) {
      out.push_back(pending);
    } else {
      // One U+FFFD per byte token, as HF.
      for (std::size_t k = 0; k < pending_count; ++k) out.emplace_back("\xEF\xBF\xBD");
    }
    pending.clear();
    pending_count = 0;
  };
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::string& t : tokens) {
    if (t.size() == 6 && t.starts_with("<0x") && t[5] == '>' && hex(t[3]) >= 0 && hex(t[4]) >= 0) {
      pending.push_back(static_cast<char>(hex(t[3]) * 16 + hex(t[4])));
      ++pending_count;
      continue;
    }
    flush();
    out.push_back(std::move(t));
  }
  flush();
  tokens = std::move(out);
}

void FuseDecoder::decode_chain(std::vector<std::string>& tokens) const {
  std::string all;
  for (const std::string& t : tokens) all += t;
  tokens.assign(1, std::move(all));
}

void StripDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (std::string& t : tokens) {
    std::u32string chars;
    for (std::size_t i = 0; i < t.size();) chars.push_back(next_code_point(t, i));
    std::size_t start_cut = 0;
    for (std::size_t i = 0; i < start_ && i < chars.size(); ++i) {
      if (chars[i] != content_) break;
      start_cut = i + 1;
    }
    std::size_t stop_cut = chars.size();
    for (std::size_t i = 0; i < stop_ && i < chars.size(); ++i) {
      const std::size_t index = chars.size() - i - 1;
      if (chars[index] != content_) break;
      stop_cut = index;
    }
    std::string out;
    for (std::size_t i = start_cut; i < stop_cut; ++i) append_utf8(out, chars[i]);
    t = std::move(out);
  }
}

void ReplaceDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (std::string& t : tokens) {
    std::string out;
    for (const Match& m : pattern_.find_matches(t)) {
      if (m.is_match) {
        out.append(content_);
      } else {
        out.append(t, m.begin, m.end - m.begin);
      }
    }
    t = std::move(out);
  }
}

void BpeDecoder::decode_chain(std::vector<std::string>& tokens) const {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
  }
}

std::unique_ptr<Decoder> make_decoder(const JsonView& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.at("type").str();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "WordPiece") return std::make_unique<WordPieceDecoder>(j.str_or("prefix", "##"), j.bool_or("cleanup", true));
  if (type == "Metaspace") return std::make_unique<MetaspaceDecoder>(single_char(j.at("replacement")), parse_prepend_scheme(j));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(single_char(j.at("content")), static_cast<std::size_t>(j.int_or("start", 0)),
                                          static_cast<std::size_t>(j.int_or("stop", 0)));
  }
  if (type == "Replace") return std::make_unique<ReplaceDecoder>(parse_pattern(j.at("pattern")), j.at("content").str());
  if (type == "BPEDecoder") return std::make_unique<BpeDecoder>(j.str_or("suffix", "</w>"));
  if (type == "Sequence") {
    const JsonView list = j.at("decoders");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (auto d = make_decoder(list.at(i))) steps.push_back(std::move(d));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  j.at("type").fail(fmt::format("unsupported decoder type '{}'", type));
}

}  // namespace ptune::text
