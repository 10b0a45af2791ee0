#include "framework/data/dataset.h"

#include <algorithm>
#include <unordered_set>

#include "framework/core/error.h"

namespace ptune::data {

namespace {

using model::TaskKind;

// ---- templates ------------------------------------------------------------

enum class BitKind : uint8_t { kLiteral, kField, kMask };
struct Bit {
  BitKind kind;
  std::string text;  // literal text or field name
};
// A virtual slot (count > 0) or a text piece (bits).
struct Part {
  int64_t virtual_count = 0;
  std::vector<Bit> bits;
};
using Segment = std::vector<Part>;

Segment parse_template(const std::string& tpl, const char* option) {
  Segment seg;
  auto text_part = [&]() -> Part& {
    if (seg.empty() || seg.back().virtual_count > 0) seg.emplace_back();
    return seg.back();
  };
  auto add_literal = [&](std::string_view s) {
    Part& p = text_part();
    if (!p.bits.empty() && p.bits.back().kind == BitKind::kLiteral)
      p.bits.back().text += s;
    else
      p.bits.push_back({BitKind::kLiteral, std::string(s)});
  };
  size_t i = 0;
  while (i < tpl.size()) {
    const std::string_view rest = std::string_view(tpl).substr(i);
    if (rest.starts_with("{{") || rest.starts_with("}}")) {
      add_literal(rest.substr(0, 1));
      i += 2;
    } else if (rest[0] == '{') {
      const size_t close = rest.find('}');
      PTUNE_CHECK(close != std::string_view::npos, "data.{}: unterminated '{{' at column {} of template '{}'", option,
                  i + 1, tpl);
      const std::string name(rest.substr(1, close - 1));
      PTUNE_CHECK(!name.empty() && name.find('{') == std::string::npos,
                  "data.{}: bad field reference '{}' at column {} of template '{}' (write {{{{ for a literal brace)",
                  option, rest.substr(0, close + 1), i + 1, tpl);
      text_part().bits.push_back({BitKind::kField, name});
      i += close + 1;
    } else if (rest[0] == '}') {
      PTUNE_FAIL("data.{}: unmatched '}}' at column {} of template '{}' (write }}}} for a literal brace)", option,
                 i + 1, tpl);
    } else if (rest.starts_with("[MASK]")) {
      text_part().bits.push_back({BitKind::kMask, ""});
      i += 6;
    } else if (rest.starts_with("[P]") || rest.starts_with("[P*")) {
      int64_t k = 1;
      size_t len = 3;
      if (rest[2] == '*') {
        const size_t close = rest.find(']');
        PTUNE_CHECK(close != std::string_view::npos, "data.{}: unterminated '[P*' at column {} of template '{}'",
                    option, i + 1, tpl);
        const std::string_view digits = rest.substr(3, close - 3);
        PTUNE_CHECK(!digits.empty() && digits.size() <= 9 &&
                        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }),
                    "data.{}: bad virtual slot '{}' at column {} of template '{}' (expected [P*k], k > 0)", option,
                    rest.substr(0, close + 1), i + 1, tpl);
        k = std::stoll(std::string(digits));
        PTUNE_CHECK(k > 0, "data.{}: virtual slot '{}' of template '{}' has no tokens", option,
                    rest.substr(0, close + 1), tpl);
        len = close + 1;
      }
      if (!seg.empty() && seg.back().virtual_count > 0)
        seg.back().virtual_count += k;
      else
        seg.push_back(Part{k, {}});
      i += len;
    } else {
      const size_t next = rest.find_first_of("{}[", 1);
      add_literal(rest.substr(0, next));
      i += next == std::string_view::npos ? rest.size() : next;
    }
  }
  return seg;
}

int64_t count_virtual(const Segment& s) {
  int64_t n = 0;
  for (const Part& p : s) n += p.virtual_count;
  return n;
}
int64_t count_masks(const Segment& s) {
  int64_t n = 0;
  for (const Part& p : s)
    for (const Bit& b : p.bits) n += b.kind == BitKind::kMask;
  return n;
}

// ---- tokens ---------------------------------------------------------------

enum class TokKind : uint8_t { kFixed, kCut, kVirtual, kMask };
struct Tok {
  int32_t id;
  TokKind kind;
};

// Where the post-processor puts special tokens and the sequences.
struct SkeletonItem {
  int32_t id;       // special token id (segment < 0)
  uint32_t type;    // its type id, or the segment's
  int segment;      // -1: a special token; 0 / 1: the first / second sequence
};

// encode() without the tokenizer's own padding.
text::Encoding encode_unpadded(const text::Tokenizer& tok, std::string_view a, const std::string* b, bool special) {
  text::Encoding e = b ? tok.encode_pair(a, *b, special) : tok.encode(a, special);
  if (!tok.padding()) return e;
  text::Encoding out;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.attention_mask[i] == 0) continue;
    out.push_back(e.ids[i], e.type_ids[i], e.tokens[i], e.offsets[i], e.special_tokens_mask[i] != 0,
                  e.sequence_ids[i]);
  }
  return out;
}

std::vector<SkeletonItem> probe_skeleton(const text::Tokenizer& tok, bool pair) {
  const std::string b = "b";
  const text::Encoding e = encode_unpadded(tok, "a", pair ? &b : nullptr, true);
  std::vector<SkeletonItem> sk;
  int seen[2] = {0, 0};
  for (size_t i = 0; i < e.size(); ++i) {
    const int s = e.sequence_ids[i];
    if (s < 0) {
      sk.push_back({int32_t(e.ids[i]), e.type_ids[i], -1});
    } else if (sk.empty() || sk.back().segment != s) {
      PTUNE_CHECK(s <= 1 && seen[s] == 0, "the tokenizer's post-processor splits sequence {} in two", s);
      ++seen[s];
      sk.push_back({-1, e.type_ids[i], s});
    }
  }
  PTUNE_CHECK(seen[0] == 1 && seen[1] == (pair ? 1 : 0),
              "the tokenizer's post-processor layout is not understood (probe encoding of 'a'{})",
              pair ? " / 'b'" : "");
  return sk;
}

std::optional<int32_t> find_token(const text::Tokenizer& tok, std::initializer_list<const char*> candidates) {
  for (const char* c : candidates)
    if (const auto id = tok.token_to_id(c)) return int32_t(*id);
  return std::nullopt;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) {
    if (!s.empty()) s += ", ";
    s += x;
  }
  return s;
}

// HF's LongestFirst split of `budget` between two sequences of n1, n2 tokens.
std::pair<int64_t, int64_t> longest_first(int64_t n1, int64_t n2, int64_t budget) {
  const bool swap = n1 > n2;
  if (swap) std::swap(n1, n2);
  n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
  if (n1 + n2 > budget) {
    n1 = budget / 2;
    n2 = n1 + budget % 2;
  }
  if (swap) std::swap(n1, n2);
  return {n1, n2};
}

// Drops cuttable tokens from the right until `keep` of them are left.
void cut_to(std::vector<Tok>& toks, int64_t keep) {
  int64_t have = 0;
  for (const Tok& t : toks) have += t.kind == TokKind::kCut;
  for (size_t i = toks.size(); i-- > 0 && have > keep;) {
    if (toks[i].kind == TokKind::kCut) {
      toks.erase(toks.begin() + std::ptrdiff_t(i));
      --have;
    }
  }
}

// The one token id of a label word, as it appears mid-sentence.
int32_t verbalizer_id(const text::Tokenizer& tok_, const std::string& label, const std::string& word) {
  PTUNE_CHECK(!word.empty(), "data.verbalizer: the word of label '{}' is empty", label);
  auto ids = [&](const std::string& s) {
    std::vector<int32_t> v;
    for (uint32_t id : encode_unpadded(tok_, s, nullptr, false).ids) v.push_back(int32_t(id));
    return v;
  };
  auto tokens = [&](const std::string& s) {
    std::vector<std::string> t = encode_unpadded(tok_, s, nullptr, false).tokens;
    return "[" + join(t) + "]";
  };
  const std::string spaced = is_space(word.front()) ? word : " " + word;
  const std::vector<int32_t> a = ids(spaced);
  if (a.size() == 1) return a[0];
  const std::vector<int32_t> bare = ids(word);
  if (bare.size() == 1 && a.size() == 2 && a[1] == bare[0]) return bare[0];
  PTUNE_FAIL("data.verbalizer: the word '{}' (label '{}') is {} tokens {} for this tokenizer (as it appears "
             "mid-sentence, with a leading space); a label word must be one token",
             word, label, a.size(), tokens(spaced));
}

// What the builder hands over to the Dataset.
struct Built {
  std::vector<Example> examples;
  int64_t num_virtual = 0;
  std::vector<int32_t> verbalizer_ids;
  int32_t pad_id = 0, mask_id = -1, eos_id = -1;
};

class Builder {
 public:
  Builder(const std::string& origin, const DataOptions& o, const text::Tokenizer& tok, const TemplateContext& ctx)
      : origin_(origin), o_(o), tok_(tok), ctx_(ctx) {}

  Built build(std::span<const Record> records);

 private:
  std::vector<Tok> encode_segment(const Segment& seg, const Record& r) const;
  Example build_one(const Record& r) const;
  Example build_tagged(const Record& r) const;

  const std::string& origin_;
  const DataOptions& o_;
  const text::Tokenizer& tok_;
  const TemplateContext& ctx_;
  Segment segs_[2];
  bool pair_ = false;
  std::vector<SkeletonItem> skeleton_;
  std::string mask_text_;
  int32_t mask_id_ = -1, eos_id_ = -1;
  int64_t template_masks_ = 0;
};

std::vector<Tok> Builder::encode_segment(const Segment& seg, const Record& r) const {
  std::vector<Tok> out;
  for (size_t p = 0; p < seg.size(); ++p) {
    const Part& part = seg[p];
    if (part.virtual_count > 0) {
      for (int64_t k = 0; k < part.virtual_count; ++k) out.push_back({0, TokKind::kVirtual});
      continue;
    }
    // Assemble the piece's text; remember which bytes came from fields / [MASK].
    std::string s;
    std::vector<std::pair<size_t, size_t>> fields;
    std::pair<size_t, size_t> mask{0, 0};
    bool has_mask = false;
    for (const Bit& b : part.bits) {
      if (b.kind == BitKind::kLiteral) {
        s += b.text;
      } else if (b.kind == BitKind::kField) {
        const std::string* v = r.find(b.text);
        PTUNE_CHECK(v != nullptr, "{}:{}: missing field '{}' used by the template (fields: {})", origin_, r.line,
                    b.text, r.field_names());
        fields.emplace_back(s.size(), s.size() + v->size());
        s += *v;
      } else {
        mask = {s.size(), s.size() + mask_text_.size()};
        has_mask = true;
        s += mask_text_;
      }
    }
    if (p + 1 < seg.size()) {  // a virtual slot follows: its preceding whitespace would be a token of its own
      while (!s.empty() && is_space(s.back())) s.pop_back();
    }
    if (s.empty()) continue;
    text::Encoding e;
    try {
      e = encode_unpadded(tok_, s, nullptr, false);
    } catch (const Error& err) {
      PTUNE_FAIL("{}:{}: {}", origin_, r.line, err.what());
    }
    if (const auto& tr = tok_.truncation()) {
      PTUNE_CHECK(e.size() < tr->max_length,
                  "{}:{}: the tokenizer's own truncation (max_length {}, from tokenizer.json) may have cut this text; "
                  "transformers ignores it: turn it off with tokenizer.set_truncation(std::nullopt)",
                  origin_, r.line, tr->max_length);
    }
    int64_t masks = 0;
    for (size_t i = 0; i < e.size(); ++i) {
      const size_t b = e.offsets[i].begin, en = e.offsets[i].end;
      auto overlaps = [&](std::pair<size_t, size_t> rg) {
        return b == en ? (rg.first <= b && b < rg.second) : (b < rg.second && en > rg.first);
      };
      TokKind kind = TokKind::kFixed;
      if (has_mask && int32_t(e.ids[i]) == mask_id_ && overlaps(mask)) {
        kind = TokKind::kMask;
        ++masks;
      } else if (std::any_of(fields.begin(), fields.end(), overlaps)) {
        kind = TokKind::kCut;
      }
      out.push_back({int32_t(e.ids[i]), kind});
    }
    PTUNE_CHECK(masks == (has_mask ? 1 : 0), "{}:{}: the template's [MASK] became {} mask tokens ('{}')", origin_,
                r.line, masks, mask_text_);
  }
  return out;
}

Example Builder::build_one(const Record& r) const {
  Example ex;
  ex.line = r.line;
  std::vector<Tok> seg[2];
  for (int s = 0; s < (pair_ ? 2 : 1); ++s) seg[s] = encode_segment(segs_[s], r);

  // Label.
  const bool needs_label = ctx_.task != TaskKind::kCausalLm || !o_.labels.empty();
  const std::string* v = needs_label ? r.find(o_.label_field) : nullptr;
  if (needs_label && (v != nullptr || ctx_.labels_required)) {
    PTUNE_CHECK(v != nullptr, "{}:{}: missing label field '{}' (fields: {})", origin_, r.line, o_.label_field,
                r.field_names());
    const auto it = std::find(o_.labels.begin(), o_.labels.end(), *v);
    PTUNE_CHECK(it != o_.labels.end(), "{}:{}: label '{}' is not in the label set [{}]", origin_, r.line, *v,
                join(o_.labels));
    ex.label = int32_t(it - o_.labels.begin());
  }

  // Causal-LM answer (+ EOS): fixed, after everything.
  std::vector<int32_t> answer;
  if (ctx_.task == TaskKind::kCausalLm) {
    const std::string* v = r.find(o_.answer_field);
    PTUNE_CHECK(v != nullptr, "{}:{}: missing answer field '{}' (fields: {})", origin_, r.line, o_.answer_field,
                r.field_names());
    text::Encoding e;
    try {
      e = encode_unpadded(tok_, *v, nullptr, false);
    } catch (const Error& err) {
      PTUNE_FAIL("{}:{}: {}", origin_, r.line, err.what());
    }
    for (uint32_t id : e.ids) answer.push_back(int32_t(id));
    if (ctx_.append_eos && eos_id_ >= 0) answer.push_back(eos_id_);
    PTUNE_CHECK(!answer.empty(), "{}:{}: the answer field '{}' is empty", origin_, r.line, o_.answer_field);
  }

  // Truncation: only field tokens are cut.
  int64_t fixed = ctx_.prepend + int64_t(answer.size());
  for (const SkeletonItem& it : skeleton_) fixed += it.segment < 0;
  int64_t cut[2] = {0, 0};
  for (int s = 0; s < 2; ++s)
    for (const Tok& t : seg[s]) (t.kind == TokKind::kCut ? cut[s] : fixed) += 1;
  const int64_t budget = o_.max_length - fixed;
  PTUNE_CHECK(budget >= 0,
              "{}:{}: the fixed parts (special, virtual, [MASK], template-text and answer tokens) take {} tokens, more "
              "than max_length {}",
              origin_, r.line, fixed, o_.max_length);
  if (cut[0] + cut[1] > budget) {
    int64_t keep[2] = {cut[0], cut[1]};
    switch (o_.truncation) {
      case Truncation::kLongestFirst:
        if (pair_)
          std::tie(keep[0], keep[1]) = longest_first(cut[0], cut[1], budget);
        else
          keep[0] = budget;
        break;
      case Truncation::kOnlyFirst:
        // As HF: at least one token of the truncated text must remain.
        keep[0] = budget - cut[1];
        PTUNE_CHECK(keep[0] >= 1,
                    "{}:{}: only_first truncation cannot fit max_length {}: the rest leaves {} tokens for the first "
                    "text, which has {}",
                    origin_, r.line, o_.max_length, keep[0], cut[0]);
        break;
      case Truncation::kOnlySecond:
        keep[1] = budget - cut[0];
        PTUNE_CHECK(keep[1] >= 1,
                    "{}:{}: only_second truncation cannot fit max_length {}: the rest leaves {} tokens for the second "
                    "text, which has {}",
                    origin_, r.line, o_.max_length, keep[1], cut[1]);
        break;
    }
    for (int s = 0; s < 2; ++s) cut_to(seg[s], keep[s]);
  }

  // Assemble: prepended virtual tokens, then the post-processor's layout.
  int32_t next_virtual = 0;
  auto push = [&](int32_t id, int32_t type) {
    ex.ids.push_back(id);
    ex.type_ids.push_back(type);
  };
  for (int64_t k = 0; k < ctx_.prepend; ++k) push(-(++next_virtual), 0);
  for (const SkeletonItem& it : skeleton_) {
    if (it.segment < 0) {
      push(it.id, int32_t(it.type));
      continue;
    }
    for (const Tok& t : seg[it.segment]) {
      if (t.kind == TokKind::kVirtual) {
        push(-(++next_virtual), 0);
        continue;
      }
      if (t.kind == TokKind::kMask) ex.mask_position = int32_t(ex.ids.size());
      push(t.id, int32_t(it.type));
    }
  }
  if (ctx_.task == TaskKind::kCausalLm) {
    ex.lm_labels.assign(ex.ids.size(), kIgnoreIndex);
    for (int32_t id : answer) {
      push(id, 0);
      ex.lm_labels.push_back(id);
    }
  }
  if (ctx_.task == TaskKind::kVerbalizer && template_masks_ == 0) ex.mask_position = int32_t(ex.ids.size()) - 1;
  return ex;
}

Example Builder::build_tagged(const Record& r) const {
  const std::vector<std::string>* words = r.find_list(o_.tokens_field);
  const std::vector<std::string>* tags = r.find_list(o_.label_field);
  // Words given as one text (raw sentences to tag, a CSV column) are its
  // whitespace-separated pieces.
  std::vector<std::string> split;
  if (!words) {
    if (const std::string* text = r.find(o_.tokens_field)) {
      for (size_t i = text->find_first_not_of(" \t\r\n"); i != std::string::npos;) {
        const size_t end = text->find_first_of(" \t\r\n", i);
        split.push_back(text->substr(i, end == std::string::npos ? std::string::npos : end - i));
        i = end == std::string::npos ? end : text->find_first_not_of(" \t\r\n", end);
      }
      words = &split;
    }
  }
  auto check_list = [&](const std::vector<std::string>* list, const std::string& name, const char* what) {
    PTUNE_CHECK(list != nullptr,
                "{}:{}: {} '{}' {} (token classification reads lists: JSONL arrays or CoNLL columns; fields: {})",
                origin_, r.line, what, name, r.find(name) ? "is a text, not a list" : "is missing", r.field_names());
  };
  check_list(words, o_.tokens_field, "the words field");
  const bool gold = tags != nullptr || ctx_.labels_required;  // else each word is only predicted
  if (gold) {
    check_list(tags, o_.label_field, "the tags field");
    PTUNE_CHECK(words->size() == tags->size(), "{}:{}: {} words in '{}' but {} tags in '{}'", origin_, r.line,
                words->size(), o_.tokens_field, tags->size(), o_.label_field);
  }

  // Word tokens, the first of each word tagged with its class.
  struct WordTok {
    int32_t id, tag, word;  // tag: -100 but on a word's first token (all its tokens with label_all_tokens)
  };
  std::vector<WordTok> toks;
  // label_all_tokens: a word's later tokens continue its entity (run_ner.py's b_to_i_label).
  auto inside_of = [&](int32_t label) {
    if (label < 0 || !o_.labels[size_t(label)].starts_with("B-")) return label;
    const auto it = std::find(o_.labels.begin(), o_.labels.end(), "I-" + o_.labels[size_t(label)].substr(2));
    return it == o_.labels.end() ? label : int32_t(it - o_.labels.begin());
  };
  for (size_t w = 0; w < words->size(); ++w) {
    int32_t label = kUnlabeled;
    if (gold) {
      const std::string& tag = (*tags)[w];
      const auto it = std::find(o_.labels.begin(), o_.labels.end(), tag);
      PTUNE_CHECK(it != o_.labels.end(), "{}:{}: tag '{}' of word {} ('{}') is not in the label set [{}]", origin_,
                  r.line, tag, w + 1, (*words)[w], join(o_.labels));
      label = int32_t(it - o_.labels.begin());
    }
    text::Encoding e;
    try {
      e = tok_.encode_word((*words)[w]);
    } catch (const Error& err) {
      PTUNE_FAIL("{}:{}: word {}: {}", origin_, r.line, w + 1, err.what());
    }
    const int32_t later = o_.label_all_tokens ? inside_of(label) : kIgnoreIndex;
    for (size_t i = 0; i < e.size(); ++i) toks.push_back({int32_t(e.ids[i]), i == 0 ? label : later, int32_t(w)});
  }

  int64_t fixed = ctx_.prepend;
  for (const SkeletonItem& it : skeleton_) fixed += it.segment < 0;
  const int64_t budget = o_.max_length - fixed;
  PTUNE_CHECK(budget >= 0, "{}:{}: the special and virtual tokens take {} tokens, more than max_length {}", origin_,
              r.line, fixed, o_.max_length);
  Example ex;
  ex.line = r.line;
  ex.truncated = int64_t(toks.size()) > budget;
  if (ex.truncated) toks.resize(size_t(budget));  // cut from the right, as HF
  ex.words = int32_t(words->size());
  auto push = [&](int32_t id, int32_t type, int32_t tag) {
    ex.ids.push_back(id);
    ex.type_ids.push_back(type);
    ex.tags.push_back(tag);
  };
  for (int64_t k = 0; k < ctx_.prepend; ++k) push(-int32_t(k + 1), 0, kIgnoreIndex);
  for (const SkeletonItem& it : skeleton_) {
    if (it.segment < 0) {
      push(it.id, int32_t(it.type), kIgnoreIndex);
      continue;
    }
    for (const WordTok& t : toks) {
      push(t.id, int32_t(it.type), t.tag);
      if (t.tag != kIgnoreIndex) ex.tag_words.push_back(t.word);
    }
  }
  return ex;
}

Built Builder::build(std::span<const Record> records) {
  PTUNE_CHECK(o_.max_length > 0, "data.max_length must be positive, got {}", o_.max_length);
  PTUNE_CHECK(ctx_.prepend >= 0, "negative number of prepended virtual tokens {}", ctx_.prepend);
  segs_[0] = parse_template(o_.text, "text");
  pair_ = !o_.text_pair.empty();
  if (pair_) segs_[1] = parse_template(o_.text_pair, "text_pair");
  PTUNE_CHECK(pair_ || o_.truncation != Truncation::kOnlySecond,
              "data.truncation only_second needs a second text (data.text_pair)");

  Built out;
  const int64_t slots = count_virtual(segs_[0]) + count_virtual(segs_[1]);
  PTUNE_CHECK(slots == 0 || ctx_.prepend == 0,
              "the template has {} virtual-token slots ([P]) and the method prepends {} more; use one or the other",
              slots, ctx_.prepend);
  out.num_virtual = slots + ctx_.prepend;

  template_masks_ = count_masks(segs_[0]) + count_masks(segs_[1]);
  PTUNE_CHECK(template_masks_ <= 1, "the templates have {} [MASK]s; at most one is supported", template_masks_);
  if (ctx_.mask_token) {
    const auto id = tok_.token_to_id(*ctx_.mask_token);
    PTUNE_CHECK(id.has_value(), "mask token '{}' is not in the tokenizer's vocabulary", *ctx_.mask_token);
    mask_text_ = *ctx_.mask_token;
    mask_id_ = int32_t(*id);
  } else if (const auto id = find_token(tok_, {"[MASK]"})) {
    mask_text_ = "[MASK]", mask_id_ = *id;
  } else if (const auto id2 = find_token(tok_, {"<mask>"})) {
    mask_text_ = "<mask>", mask_id_ = *id2;
  }
  PTUNE_CHECK(template_masks_ == 0 || mask_id_ >= 0,
              "the template uses [MASK] but the tokenizer has no mask token ([MASK] or <mask>)");
  PTUNE_CHECK(ctx_.task != TaskKind::kVerbalizer || template_masks_ == 1 || mask_id_ < 0,
              "a verbalizer task with a masked LM needs [MASK] in data.text or data.text_pair");

  if (ctx_.eos_id)
    eos_id_ = *ctx_.eos_id;
  else if (const auto id = find_token(tok_, {"</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>"}))
    eos_id_ = *id;
  if (ctx_.pad_id)
    out.pad_id = *ctx_.pad_id;
  else if (tok_.padding())
    out.pad_id = int32_t(tok_.padding()->pad_id);
  else
    out.pad_id = find_token(tok_, {"[PAD]", "<pad>"}).value_or(0);  // GPT-2 has none: 0, masked out
  out.mask_id = mask_id_;
  out.eos_id = eos_id_;

  if (ctx_.task == TaskKind::kCausalLm) {
    PTUNE_CHECK(!o_.answer_field.empty(), "a causal-LM task needs data.answer_field");
  } else {
    PTUNE_CHECK(!o_.labels.empty(), "a classification, verbalizer or token-classification task needs data.labels");
  }
  const bool tagged = ctx_.task == TaskKind::kTokenClassification;
  PTUNE_CHECK(!tagged || (!pair_ && slots == 0 && template_masks_ == 0),
              "token classification reads the words of data.tokens_field ('{}'); data.text and data.text_pair "
              "templates ([P] slots, [MASK], a second text) do not apply to it",
              o_.tokens_field);
  std::unordered_set<std::string> label_set;
  for (const std::string& l : o_.labels)
    PTUNE_CHECK(label_set.insert(l).second, "data.labels lists '{}' twice", l);
  if (ctx_.task == TaskKind::kVerbalizer) out.verbalizer_ids = verbalizer_token_ids(o_, tok_);

  skeleton_ = probe_skeleton(tok_, pair_);
  out.examples.reserve(records.size());
  for (const Record& r : records) out.examples.push_back(tagged ? build_tagged(r) : build_one(r));
  PTUNE_CHECK(!out.examples.empty(), "{}: no examples", origin_);
  return out;
}

}  // namespace

std::vector<int32_t> verbalizer_token_ids(const DataOptions& options, const text::Tokenizer& tokenizer) {
  for (const auto& [label, word] : options.verbalizer)
    PTUNE_CHECK(std::find(options.labels.begin(), options.labels.end(), label) != options.labels.end(),
                "data.verbalizer has a word for '{}', which is not in data.labels [{}]", label, join(options.labels));
  std::vector<int32_t> ids;
  for (const std::string& l : options.labels) {
    const auto it = options.verbalizer.find(l);
    PTUNE_CHECK(it != options.verbalizer.end(), "data.verbalizer has no word for label '{}'", l);
    ids.push_back(verbalizer_id(tokenizer, l, it->second));
  }
  return ids;
}

Dataset Dataset::from_records(std::span<const Record> records, const std::string& origin, const DataOptions& options,
                              const text::Tokenizer& tokenizer, const TemplateContext& context) {
  Builder b(origin, options, tokenizer, context);
  Built p = b.build(records);
  Dataset d;
  d.examples_ = std::move(p.examples);
  d.origin_ = origin;
  d.num_virtual_ = p.num_virtual;
  d.verbalizer_ids_ = std::move(p.verbalizer_ids);
  d.labels_ = options.labels;
  d.pad_id_ = p.pad_id;
  d.mask_id_ = p.mask_id;
  d.eos_id_ = p.eos_id;
  d.task_ = context.task;
  return d;
}

Dataset Dataset::load(const std::string& path, const DataOptions& options, const text::Tokenizer& tokenizer,
                      const TemplateContext& context) {
  const std::vector<Record> records = read_records(path, options.format);
  return from_records(records, path, options, tokenizer, context);
}

int64_t Dataset::truncated() const {
  return std::count_if(examples_.begin(), examples_.end(), [](const Example& e) { return e.truncated; });
}

std::vector<int64_t> Dataset::lengths() const {
  std::vector<int64_t> v(examples_.size());
  for (size_t i = 0; i < examples_.size(); ++i) v[i] = int64_t(examples_[i].ids.size());
  return v;
}

}  // namespace ptune::data
