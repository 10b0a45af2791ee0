#include "framework/text/post_processors.h"

#include <charconv>

#include "framework/core/error.h"
#include "framework/text/byte_level.h"
#include "framework/text/unicode.h"

namespace ptune::text {

namespace {

bool is_byte_level_space(char32_t c) { return c == kByteToChar[' '] || is_whitespace(c); }

std::size_t leading_spaces(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    if (!is_byte_level_space(next_code_point(s, i))) break;
    ++n;
  }
  return n;
}

std::size_t trailing_spaces(std::string_view s) {
  std::size_t n = 0;
  std::size_t e = s.size();
  while (e > 0) {
    std::size_t b = e - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    std::size_t k = b;
    if (!is_byte_level_space(next_code_point(s, k))) break;
    ++n;
    e = b;
  }
  return n;
}

Encoding special_only(const std::vector<uint32_t>& ids, const std::vector<std::string>& tokens, uint32_t type_id) {
  Encoding e;
  for (std::size_t i = 0; i < ids.size(); ++i) e.push_back(ids[i], type_id, tokens[i], {0, 0}, true, -1);
  return e;
}

void set_type_ids(Encoding& e, uint32_t type_id) { std::fill(e.type_ids.begin(), e.type_ids.end(), type_id); }

}  // namespace

void trim_byte_level_offsets(Encoding& e, bool add_prefix_space) {
  // A leading/trailing "Ġ" is one byte (a space) of the original text.
  for (std::size_t i = 0; i < e.size(); ++i) {
    std::size_t lead = leading_spaces(e.tokens[i]);
    const std::size_t trail = trailing_spaces(e.tokens[i]);
    Offsets& o = e.offsets[i];
    if (lead == 0 && trail == 0) continue;
    if (lead > 0) {
      const bool is_first = i == 0 || o.begin == 0;
      // The one space a prefix space added is not in the original text.
      if (is_first && add_prefix_space && lead == 1) lead = 0;
      o.begin = std::min(o.begin + lead, o.end);
    }
    if (trail > 0 && o.end >= trail) o.end = std::max(o.end - trail, o.begin);
  }
}

void ByteLevelProcessor::process(std::vector<Encoding>& encodings, bool) const {
  if (trim_offsets_) {
    for (Encoding& e : encodings) trim_byte_level_offsets(e, add_prefix_space_);
  }
}

void BertProcessor::process(std::vector<Encoding>& encodings, bool add_special_tokens) const {
  if (!add_special_tokens) return;
  Encoding out = special_only({cls_.id}, {cls_.token}, 0);
  set_type_ids(encodings[0], 0);
  out.append(encodings[0]);
  out.append(special_only({sep_.id}, {sep_.token}, 0));
  if (encodings.size() > 1) {
    set_type_ids(encodings[1], 1);
    out.append(encodings[1]);
    out.append(special_only({sep_.id}, {sep_.token}, 1));
  }
  encodings.assign(1, std::move(out));
}

void RobertaProcessor::process(std::vector<Encoding>& encodings, bool add_special_tokens) const {
  if (trim_offsets_) {
    for (Encoding& e : encodings) trim_byte_level_offsets(e, add_prefix_space_);
  }
  for (Encoding& e : encodings) set_type_ids(e, 0);  // RoBERTa has a single type
  if (!add_special_tokens) return;
  Encoding out = special_only({cls_.id}, {cls_.token}, 0);
  out.append(encodings[0]);
  out.append(special_only({sep_.id}, {sep_.token}, 0));
  if (encodings.size() > 1) {
    out.append(special_only({sep_.id}, {sep_.token}, 0));
    out.append(encodings[1]);
    out.append(special_only({sep_.id}, {sep_.token}, 0));
  }
  encodings.assign(1, std::move(out));
}

TemplateProcessor::TemplateProcessor(std::vector<Piece> single, std::vector<Piece> pair,
                                     std::unordered_map<std::string, Special> special_tokens)
    : single_(std::move(single)), pair_(std::move(pair)), special_tokens_(std::move(special_tokens)) {
  for (const auto* list : {&single_, &pair_}) {
    for (const Piece& p : *list) {
      PTUNE_CHECK(p.is_sequence || special_tokens_.contains(p.special),
                  "TemplateProcessing: special token '{}' is used in a template but not defined", p.special);
    }
  }
}

std::size_t TemplateProcessor::added_tokens(bool is_pair) const {
  std::size_t n = 0;
  for (const Piece& p : is_pair ? pair_ : single_) {
    if (!p.is_sequence) n += special_tokens_.at(p.special).ids.size();
  }
  return n;
}

void TemplateProcessor::process(std::vector<Encoding>& encodings, bool add_special_tokens) const {
  // Type ids come from the template even without special tokens.
  Encoding out;
  for (const Piece& p : encodings.size() == 2 ? pair_ : single_) {
    if (p.is_sequence) {
      const std::size_t i = std::min<std::size_t>(p.sequence, encodings.size() - 1);
      Encoding e = encodings[i];
      set_type_ids(e, p.type_id);
      out.append(e);
    } else if (add_special_tokens) {
      const Special& s = special_tokens_.at(p.special);
      out.append(special_only(s.ids, s.tokens, p.type_id));
    }
  }
  encodings.assign(1, std::move(out));
}

std::size_t SequenceProcessor::added_tokens(bool is_pair) const {
  std::size_t n = 0;
  for (const auto& s : steps_) n += s->added_tokens(is_pair);
  return n;
}

void SequenceProcessor::process(std::vector<Encoding>& encodings, bool add_special_tokens) const {
  for (const auto& s : steps_) s->process(encodings, add_special_tokens);
}

namespace {

SpecialToken parse_special(const JsonView& j) {
  if (!j.is_array() || j.size() != 2) j.fail("expected [token, id]");
  return {j.at(0).str(), j.at(1).id()};
}

// A template piece: {"Sequence": {"id": "A", "type_id": 0}},
// {"SpecialToken": {"id": "[CLS]", "type_id": 0}}, or the string forms
// "$A", "$B:1", "[CLS]", "[SEP]:1".
TemplateProcessor::Piece parse_piece(const JsonView& j) {
  TemplateProcessor::Piece p{};
  if (j.is_string()) {
    // HF's parsing: "id" or "id:type_id" (split at the first colon), where
    // id is $, $A, $B, $<n> (sequence A with type n) or a special token.
    std::string s = j.str();
    std::optional<uint32_t> type_id;
    if (const std::size_t colon = s.find(':'); colon != std::string::npos) {
      uint32_t t = 0;
      const auto [ptr, ec] = std::from_chars(s.data() + colon + 1, s.data() + s.size(), t);
      if (ec != std::errc() || ptr != s.data() + s.size()) j.fail(fmt::format("bad type id in template piece '{}'", s));
      type_id = t;
      s.resize(colon);
    }
    if (s.starts_with('$')) {
      const std::string rest = s.substr(1);
      p.is_sequence = true;
      if (rest.empty() || rest == "A" || rest == "a") {
        p.sequence = 0;
      } else if (rest == "B" || rest == "b") {
        p.sequence = 1;
      } else {
        uint32_t t = 0;
        const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), t);
        if (ec != std::errc() || ptr != rest.data() + rest.size()) j.fail(fmt::format("bad sequence '{}'", s));
        p.sequence = 0;
        p.type_id = t;
      }
    } else {
      p.is_sequence = false;
      p.special = s;
    }
    if (type_id) p.type_id = *type_id;
    return p;
  }
  if (const auto seq = j.find("Sequence")) {
    p.is_sequence = true;
    const std::string id = seq->at("id").str();
    if (id != "A" && id != "B") seq->at("id").fail("expected \"A\" or \"B\"");
    p.sequence = id == "A" ? 0 : 1;
    p.type_id = seq->at("type_id").id();
    return p;
  }
  if (const auto sp = j.find("SpecialToken")) {
    p.is_sequence = false;
    p.special = sp->at("id").str();
    p.type_id = sp->at("type_id").id();
    return p;
  }
  j.fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
}

std::vector<TemplateProcessor::Piece> parse_template(const JsonView& j) {
  std::vector<TemplateProcessor::Piece> out;
  if (j.is_string()) {
    // "[CLS] $A [SEP]"
    const std::string s = j.str();
    std::size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && s[i] == ' ') ++i;
      std::size_t e = s.find(' ', i);
      if (e == std::string::npos) e = s.size();
      if (e > i) {
        nlohmann::json word = s.substr(i, e - i);
        out.push_back(parse_piece(JsonView(word, j.origin(), j.path())));
      }
      i = e;
    }
    return out;
  }
  for (std::size_t i = 0; i < j.size(); ++i) out.push_back(parse_piece(j.at(i)));
  return out;
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const JsonView& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.at("type").str();
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelProcessor>(j.bool_or("trim_offsets", true), j.bool_or("add_prefix_space", true));
  }
  if (type == "BertProcessing") return std::make_unique<BertProcessor>(parse_special(j.at("sep")), parse_special(j.at("cls")));
  if (type == "RobertaProcessing") {
    return std::make_unique<RobertaProcessor>(parse_special(j.at("sep")), parse_special(j.at("cls")),
                                              j.bool_or("trim_offsets", true), j.bool_or("add_prefix_space", true));
  }
  if (type == "TemplateProcessing") {
    std::unordered_map<std::string, TemplateProcessor::Special> specials;
    if (const auto st = j.find("special_tokens")) {
      if (!st->is_object()) st->fail("expected an object");
      for (const auto& [name, value] : st->raw().items()) {
        const JsonView v = st->at(name);
        TemplateProcessor::Special s;
        const JsonView ids = v.at("ids");
        const JsonView tokens = v.at("tokens");
        for (std::size_t i = 0; i < ids.size(); ++i) s.ids.push_back(ids.at(i).id());
        for (std::size_t i = 0; i < tokens.size(); ++i) s.tokens.push_back(tokens.at(i).str());
        if (s.ids.size() != s.tokens.size()) v.fail("ids and tokens differ in length");
        specials.emplace(v.at("id").str(), std::move(s));
      }
    }
    return std::make_unique<TemplateProcessor>(parse_template(j.at("single")), parse_template(j.at("pair")),
                                               std::move(specials));
  }
  if (type == "Sequence") {
    const JsonView list = j.at("processors");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (auto p = make_post_processor(list.at(i))) steps.push_back(std::move(p));
    }
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  j.at("type").fail(fmt::format("unsupported post-processor type '{}'", type));
}

}  // namespace ptune::text
