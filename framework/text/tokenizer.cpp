#include "framework/text/tokenizer.h"

#include <fstream>
#include <sstream>

#include "framework/core/error.h"
#include "framework/text/json_view.h"
#include "framework/text/unicode.h"

namespace ptune::text {

namespace {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  PTUNE_CHECK(in.good(), "cannot open {}", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Truncation parse_truncation(const JsonView& j) {
  Truncation t;
  t.max_length = static_cast<std::size_t>(j.at("max_length").id());
  t.stride = static_cast<std::size_t>(j.int_or("stride", 0));
  const std::string strategy = j.str_or("strategy", "LongestFirst");
  if (strategy == "LongestFirst") {
    t.strategy = TruncationStrategy::kLongestFirst;
  } else if (strategy == "OnlyFirst") {
    t.strategy = TruncationStrategy::kOnlyFirst;
  } else if (strategy == "OnlySecond") {
    t.strategy = TruncationStrategy::kOnlySecond;
  } else {
    j.at("strategy").fail(fmt::format("unknown truncation strategy '{}'", strategy));
  }
  const std::string direction = j.str_or("direction", "Right");
  if (direction != "Right" && direction != "Left") j.at("direction").fail("expected \"Right\" or \"Left\"");
  t.direction = direction == "Left" ? Side::kLeft : Side::kRight;
  return t;
}

Padding parse_padding(const JsonView& j) {
  Padding p;
  if (const auto s = j.find("strategy")) {
    if (s->is_string()) {
      if (s->str() != "BatchLongest") s->fail("expected \"BatchLongest\" or {\"Fixed\": n}");
    } else {
      p.length = static_cast<std::size_t>(s->at("Fixed").id());
    }
  }
  const std::string direction = j.str_or("direction", "Right");
  if (direction != "Right" && direction != "Left") j.at("direction").fail("expected \"Right\" or \"Left\"");
  p.direction = direction == "Left" ? Side::kLeft : Side::kRight;
  if (const auto m = j.find("pad_to_multiple_of")) p.pad_to_multiple_of = static_cast<std::size_t>(m->id());
  if (const auto v = j.find("pad_id")) p.pad_id = v->id();
  if (const auto v = j.find("pad_type_id")) p.pad_type_id = v->id();
  p.pad_token = j.str_or("pad_token", "[PAD]");
  return p;
}

std::vector<AddedToken> parse_added_tokens(const JsonView& j) {
  std::vector<AddedToken> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const JsonView t = j.at(i);
    AddedToken a;
    a.id = t.at("id").id();
    a.content = t.at("content").str();
    a.special = t.bool_or("special", false);
    a.single_word = t.bool_or("single_word", false);
    a.lstrip = t.bool_or("lstrip", false);
    a.rstrip = t.bool_or("rstrip", false);
    a.normalized = t.bool_or("normalized", !a.special);
    out.push_back(std::move(a));
  }
  return out;
}

// The special tokens of a legacy vocabulary that exist in it.
std::vector<AddedToken> specials_in(const Model& model, std::initializer_list<std::string_view> names) {
  std::vector<AddedToken> out;
  for (std::string_view name : names) {
    if (const auto id = model.token_to_id(name)) {
      AddedToken a;
      a.content = std::string(name);
      a.id = *id;
      a.special = true;
      a.normalized = false;
      out.push_back(std::move(a));
    }
  }
  return out;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path), path.string());
}

Tokenizer Tokenizer::from_json(std::string_view json, std::string_view origin) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    PTUNE_FAIL("{}: invalid JSON: {}", origin, e.what());
  }
  const JsonView root(doc, std::string(origin));
  if (!root.is_object()) root.fail("expected an object");
  Tokenizer t;
  if (const auto n = root.find("normalizer")) t.normalizer_ = make_normalizer(*n);
  if (const auto p = root.find("pre_tokenizer")) t.pre_tokenizer_ = make_pre_tokenizer(*p);
  t.model_ = make_model(root.at("model"));
  if (const auto p = root.find("post_processor")) t.post_processor_ = make_post_processor(*p);
  if (const auto d = root.find("decoder")) t.decoder_ = make_decoder(*d);
  if (const auto a = root.find("added_tokens")) t.added_ = AddedVocabulary(parse_added_tokens(*a), t.normalizer_.get());
  if (const auto tr = root.find("truncation")) t.truncation_ = parse_truncation(*tr);
  if (const auto pa = root.find("padding")) t.padding_ = parse_padding(*pa);
  return t;
}

Tokenizer Tokenizer::from_directory(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (fs::exists(dir / "tokenizer.json")) return from_file(dir / "tokenizer.json");
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(dir / "tokenizer_config.json")) {
    try {
      config = nlohmann::json::parse(read_text_file(dir / "tokenizer_config.json"));
    } catch (const nlohmann::json::exception& e) {
      PTUNE_FAIL("{}: invalid JSON: {}", (dir / "tokenizer_config.json").string(), e.what());
    }
  }
  const JsonView cfg(config, (dir / "tokenizer_config.json").string());
  Tokenizer t;
  if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) {
    // GPT-2 and RoBERTa ship the same two files; tokenizer_class tells them apart.
    const bool roberta = cfg.str_or("tokenizer_class", "").find("Roberta") != std::string::npos;
    const bool prefix_space = cfg.bool_or("add_prefix_space", false);
    t.model_ = load_bpe_files((dir / "vocab.json").string(), (dir / "merges.txt").string());
    t.pre_tokenizer_ = std::make_unique<ByteLevelPreTokenizer>(prefix_space, true);
    t.decoder_ = std::make_unique<ByteLevelDecoder>();
    if (roberta) {
      std::vector<AddedToken> specials = specials_in(*t.model_, {"<s>", "<pad>", "</s>", "<unk>", "<mask>"});
      for (AddedToken& a : specials) a.lstrip = a.content == "<mask>";
      t.added_ = AddedVocabulary(std::move(specials), nullptr);
      const auto cls = t.model_->token_to_id("<s>");
      const auto sep = t.model_->token_to_id("</s>");
      PTUNE_CHECK(cls && sep, "{}: RoBERTa vocabulary without <s> or </s>", (dir / "vocab.json").string());
      t.post_processor_ = std::make_unique<RobertaProcessor>(SpecialToken{"</s>", *sep}, SpecialToken{"<s>", *cls},
                                                             true, prefix_space);
    } else {
      t.added_ = AddedVocabulary(specials_in(*t.model_, {"<|endoftext|>"}), nullptr);
      t.post_processor_ = std::make_unique<ByteLevelProcessor>(false, true);
    }
    return t;
  }
  if (fs::exists(dir / "vocab.txt")) {
    t.model_ = load_wordpiece_file((dir / "vocab.txt").string());
    BertNormalizerOptions o;
    o.lowercase = cfg.bool_or("do_lower_case", true);
    o.handle_chinese_chars = cfg.bool_or("tokenize_chinese_chars", true);
    if (const auto sa = cfg.find("strip_accents")) o.strip_accents = sa->boolean();
    t.normalizer_ = std::make_unique<BertNormalizer>(o);
    t.pre_tokenizer_ = std::make_unique<BertPreTokenizer>();
    t.decoder_ = std::make_unique<WordPieceDecoder>("##", true);
    t.added_ = AddedVocabulary(specials_in(*t.model_, {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}),
                               t.normalizer_.get());
    const auto cls = t.model_->token_to_id("[CLS]");
    const auto sep = t.model_->token_to_id("[SEP]");
    PTUNE_CHECK(cls && sep, "{}: BERT vocabulary without [CLS] or [SEP]", (dir / "vocab.txt").string());
    using Piece = TemplateProcessor::Piece;
    std::vector<Piece> single{{false, 0, "[CLS]", 0}, {true, 0, "", 0}, {false, 0, "[SEP]", 0}};
    std::vector<Piece> pair = single;
    pair.push_back({true, 1, "", 1});
    pair.push_back({false, 0, "[SEP]", 1});
    std::unordered_map<std::string, TemplateProcessor::Special> specials{
        {"[CLS]", {{*cls}, {"[CLS]"}}}, {"[SEP]", {{*sep}, {"[SEP]"}}}};
    t.post_processor_ = std::make_unique<TemplateProcessor>(std::move(single), std::move(pair), std::move(specials));
    return t;
  }
  PTUNE_FAIL("{}: no tokenizer.json, vocab.json + merges.txt, or vocab.txt", dir.string());
}

Encoding Tokenizer::encode_sequence(std::string_view text, uint32_t type_id, int32_t sequence) const {
  check_utf8(text, "encode");
  PreTokenizedString pre = added_.extract_and_normalize(text, normalizer_.get());
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pre);
  Encoding e;
  std::vector<Token> tokens;
  for (Split& split : pre.splits()) {
    const NormalizedString& n = split.normalized;
    const std::vector<Token>* list = nullptr;
    if (split.tokens) {
      list = &*split.tokens;
    } else {
      tokens.clear();
      model_->tokenize(n.get(), tokens);
      list = &tokens;
    }
    for (const Token& tok : *list) {
      e.push_back(tok.id, type_id, tok.value, n.original_offsets(tok.offsets.begin, tok.offsets.end), false, sequence);
    }
  }
  return e;
}

Encoding Tokenizer::post_process(Encoding first, std::optional<Encoding> second, bool add_special_tokens) const {
  if (truncation_) {
    Truncation t = *truncation_;
    const std::size_t added = post_processor_ ? post_processor_->added_tokens(second.has_value()) : 0;
    if (add_special_tokens && added > 0) {
      PTUNE_CHECK(t.max_length >= added, "truncation max_length {} leaves no room for the {} special tokens",
                  t.max_length, added);
      t.max_length -= added;
    }
    truncate_encodings(first, second ? &*second : nullptr, t);
  }
  std::vector<Encoding> encodings;
  encodings.push_back(std::move(first));
  if (second) encodings.push_back(std::move(*second));
  if (post_processor_) post_processor_->process(encodings, add_special_tokens);
  Encoding out = std::move(encodings[0]);
  for (std::size_t i = 1; i < encodings.size(); ++i) out.append(encodings[i]);
  if (padding_) pad_encoding(out, *padding_);
  return out;
}

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return post_process(encode_sequence(text, 0, 0), std::nullopt, add_special_tokens);
}

Encoding Tokenizer::encode_pair(std::string_view first, std::string_view second, bool add_special_tokens) const {
  return post_process(encode_sequence(first, 0, 0), encode_sequence(second, 1, 1), add_special_tokens);
}

Encoding Tokenizer::encode_word(std::string_view word) const {
  const auto* byte_level = dynamic_cast<const ByteLevelPreTokenizer*>(pre_tokenizer_.get());
  if (!byte_level || byte_level->add_prefix_space() || word.empty() || word.front() == ' ')
    return encode_sequence(word, 0, 0);
  const std::string spaced = " " + std::string(word);
  Encoding e = encode_sequence(spaced, 0, 0);
  for (Offsets& o : e.offsets) o = {o.begin > 0 ? o.begin - 1 : 0, o.end > 0 ? o.end - 1 : 0};
  return e;
}

std::string Tokenizer::decode(std::span<const uint32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (uint32_t id : ids) {
    if (const AddedToken* a = added_.find(id)) {
      if (skip_special_tokens && a->special) continue;
      tokens.push_back(added_.decoded_content(id));
    } else if (const std::string* t = model_->id_to_token(id)) {
      tokens.push_back(*t);
    }
  }
  if (!decoder_) {
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  decoder_->decode_chain(tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

std::optional<uint32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto id = added_.token_to_id(token)) return id;
  return model_->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(uint32_t id) const {
  if (added_.find(id) != nullptr) return added_.decoded_content(id);
  if (const std::string* t = model_->id_to_token(id)) return *t;
  return std::nullopt;
}

std::size_t Tokenizer::vocab_size() const {
  std::size_t n = model_->vocab_size();
  for (const AddedToken& a : added_.tokens()) {
    if (!model_->token_to_id(a.content)) ++n;
  }
  return n;
}

}  // namespace ptune::text
