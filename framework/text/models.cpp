#include "framework/text/models.h"

#include <algorithm>
#include <bit>
#include <fstream>
#include <queue>
#include <sstream>

#include "framework/core/error.h"
#include "framework/text/unicode.h"

namespace ptune::text {

namespace {

// HF keeps up to this many words in its BPE cache.
constexpr std::size_t kCacheCapacity = 10000;
// Longer words are not cached (HF: MAX_LENGTH).
constexpr std::size_t kCacheMaxWordBytes = 256;

uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t(a) << 32) | b; }

// No pair of 32-bit ids below 2^32 - 1 gives this key.
constexpr uint64_t kEmptyKey = ~uint64_t{0};

// Fibonacci hashing: the top bits of key * 2^64/φ.
std::size_t slot_of(uint64_t key, unsigned shift) {
  return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  PTUNE_CHECK(in.good(), "cannot open {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Model::Model(Vocab vocab) : vocab_(std::move(vocab)) {
  uint32_t max_id = 0;
  for (const auto& [token, id] : vocab_) max_id = std::max(max_id, id);
  vocab_r_.assign(vocab_.empty() ? 0 : std::size_t(max_id) + 1, nullptr);
  for (const auto& [token, id] : vocab_) vocab_r_[id] = &token;
}

std::optional<uint32_t> Model::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* Model::id_to_token(uint32_t id) const { return id < vocab_r_.size() ? vocab_r_[id] : nullptr; }

// ---------------------------------------------------------------- BPE

BpeModel::BpeModel(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options)
    : Model(std::move(vocab)), options_(std::move(options)) {
  if (options_.unk_token) unk_id_ = token_to_id(*options_.unk_token);
  const std::size_t prefix_len = options_.continuing_subword_prefix.size();
  std::size_t capacity = 16;
  while (capacity < merges.size() * 2) capacity *= 2;
  merge_slots_.assign(capacity, MergeSlot{kEmptyKey, {0, 0}});
  merge_shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = token_to_id(a);
    const auto ib = token_to_id(b);
    PTUNE_CHECK(ia && ib, "BPE merge {} ('{} {}'): token '{}' is not in the vocabulary", rank, a, b, ia ? b : a);
    const std::string merged = a + b.substr(std::min(prefix_len, b.size()));
    const auto id = token_to_id(merged);
    PTUNE_CHECK(id.has_value(), "BPE merge {} ('{} {}'): merged token '{}' is not in the vocabulary", rank, a, b,
                merged);
    // A repeated pair keeps its last rank, as HF's map collection does.
    add_merge(pair_key(*ia, *ib), MergeTarget{static_cast<uint32_t>(rank), *id});
  }
  if (options_.byte_fallback) {
    for (int b = 0; b < 256; ++b) byte_ids_[b] = token_to_id(fmt::format("<0x{:02X}>", b));
  }
}

void BpeModel::add_merge(uint64_t key, MergeTarget target) {
  const std::size_t mask = merge_slots_.size() - 1;
  for (std::size_t i = slot_of(key, merge_shift_);; i = (i + 1) & mask) {
    if (merge_slots_[i].key == kEmptyKey || merge_slots_[i].key == key) {
      merge_slots_[i] = {key, target};
      return;
    }
  }
}

const BpeModel::MergeTarget* BpeModel::find_merge(uint32_t a, uint32_t b) const {
  const uint64_t key = pair_key(a, b);
  const std::size_t mask = merge_slots_.size() - 1;
  for (std::size_t i = slot_of(key, merge_shift_);; i = (i + 1) & mask) {
    const MergeSlot& s = merge_slots_[i];
    if (s.key == key) return &s.target;
    if (s.key == kEmptyKey) return nullptr;
  }
}

std::vector<BpeModel::Piece> BpeModel::merge_word(std::string_view w) const {
  struct Symbol {
    uint32_t id;
    uint32_t len;
    int prev;
    int next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(w.size());
  auto add = [&](uint32_t id, uint32_t len) {
    const int n = static_cast<int>(symbols.size());
    symbols.push_back({id, len, n - 1, -1});
    if (n > 0) symbols[n - 1].next = n;
  };
  // A pending unk token (fused over consecutive unknown characters).
  bool have_unk = false;
  uint32_t unk_len = 0;
  std::string buf;
  for (std::size_t i = 0; i < w.size();) {
    const std::size_t char_len = utf8_length(static_cast<unsigned char>(w[i]));
    const bool is_first = i == 0;
    const bool is_last = i + char_len >= w.size();
    std::string_view s = w.substr(i, char_len);
    if ((!is_first && !options_.continuing_subword_prefix.empty()) || (is_last && !options_.end_of_word_suffix.empty())) {
      buf.clear();
      if (!is_first) buf += options_.continuing_subword_prefix;
      buf += s;
      if (is_last) buf += options_.end_of_word_suffix;
      s = buf;
    }
    i += char_len;
    if (const auto id = token_to_id(s)) {
      if (have_unk) {
        add(*unk_id_, unk_len);
        have_unk = false;
      }
      add(*id, static_cast<uint32_t>(char_len));
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (char ch : s) all &= byte_ids_[static_cast<unsigned char>(ch)].has_value();
      if (all) {
        // HF pushes unk only when the next known piece comes; byte tokens
        // do not flush it.
        for (char ch : s) add(*byte_ids_[static_cast<unsigned char>(ch)], 1);
        continue;
      }
    }
    if (options_.unk_token) {
      PTUNE_CHECK(unk_id_.has_value(), "BPE: unk token '{}' is not in the vocabulary", *options_.unk_token);
      if (have_unk && options_.fuse_unk) {
        unk_len += static_cast<uint32_t>(char_len);
      } else {
        if (have_unk) add(*unk_id_, unk_len);
        have_unk = true;
        unk_len = static_cast<uint32_t>(char_len);
      }
    }
  }
  if (have_unk) add(*unk_id_, unk_len);

  struct Candidate {
    uint32_t rank;
    int pos;
    uint32_t new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  for (std::size_t k = 0; k + 1 < symbols.size(); ++k) {
    if (const MergeTarget* m = find_merge(symbols[k].id, symbols[k + 1].id)) {
      queue.push({m->rank, static_cast<int>(k), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const int next_pos = cur.next;
    const Symbol right = symbols[next_pos];
    const MergeTarget* still = find_merge(cur.id, right.id);
    if (still == nullptr || still->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next > -1 && right.next < static_cast<int>(symbols.size())) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const MergeTarget* m = find_merge(symbols[cur.prev].id, cur.id)) queue.push({m->rank, cur.prev, m->new_id});
    }
    if (cur.next >= 0) {
      if (const MergeTarget* m = find_merge(cur.id, symbols[cur.next].id)) queue.push({m->rank, top.pos, m->new_id});
    }
  }
  std::vector<Piece> pieces;
  for (const Symbol& s : symbols) {
    if (s.len != 0) pieces.push_back({s.id, s.len});
  }
  return pieces;
}

void BpeModel::tokenize(std::string_view word, std::vector<Token>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const auto id = token_to_id(word)) {
      out.push_back({*id, std::string(word), {0, word.size()}});
      return;
    }
  }
  std::vector<Piece> pieces;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      pieces = it->second;
      cached = true;
    }
  }
  if (!cached) {
    pieces = merge_word(word);
    if (word.size() < kCacheMaxWordBytes) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), pieces);
    }
  }
  std::size_t at = 0;
  for (const Piece& p : pieces) {
    const std::string* value = id_to_token(p.id);
    out.push_back({p.id, value ? *value : std::string(), {at, at + p.len}});
    at += p.len;
  }
}

// ---------------------------------------------------------------- WordPiece

WordPieceModel::WordPieceModel(Vocab vocab, std::string unk_token, std::string continuing_subword_prefix,
                               std::size_t max_input_chars_per_word)
    : Model(std::move(vocab)),
      unk_token_(std::move(unk_token)),
      prefix_(std::move(continuing_subword_prefix)),
      max_input_chars_per_word_(max_input_chars_per_word) {
  const auto unk = token_to_id(unk_token_);
  PTUNE_CHECK(unk.has_value(), "WordPiece: unk token '{}' is not in the vocabulary", unk_token_);
  unk_id_ = *unk;
}

void WordPieceModel::tokenize(std::string_view word, std::vector<Token>& out) const {
  if (count_code_points(word) > max_input_chars_per_word_) {
    out.push_back({unk_id_, unk_token_, {0, word.size()}});
    return;
  }
  const std::size_t first = out.size();
  std::string candidate;
  std::size_t start = 0;
  while (start < word.size()) {
    std::size_t end = word.size();
    bool found = false;
    while (start < end) {
      std::string_view sub = word.substr(start, end - start);
      if (start > 0) {
        candidate.assign(prefix_);
        candidate.append(sub);
        sub = candidate;
      }
      if (const auto id = token_to_id(sub)) {
        out.push_back({*id, std::string(sub), {start, end}});
        found = true;
        break;
      }
      // Drop the last character.
      --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
    }
    if (!found) {
      out.resize(first);
      out.push_back({unk_id_, unk_token_, {0, word.size()}});
      return;
    }
    start = end;
  }
}

// ---------------------------------------------------------------- WordLevel

WordLevelModel::WordLevelModel(Vocab vocab, std::string unk_token)
    : Model(std::move(vocab)), unk_token_(std::move(unk_token)) {}

void WordLevelModel::tokenize(std::string_view word, std::vector<Token>& out) const {
  if (const auto id = token_to_id(word)) {
    out.push_back({*id, std::string(word), {0, word.size()}});
    return;
  }
  const auto unk = token_to_id(unk_token_);
  PTUNE_CHECK(unk.has_value(), "WordLevel: '{}' is unknown and unk token '{}' is not in the vocabulary", word,
              unk_token_);
  out.push_back({*unk, unk_token_, {0, word.size()}});
}

// ---------------------------------------------------------------- Unigram

namespace {
// SentencePiece's score for an unknown character, below every piece.
constexpr double kUnkPenalty = 10.0;
}  // namespace

Vocab UnigramModel::make_vocab(const std::vector<std::pair<std::string, double>>& pieces) {
  Vocab v;
  v.reserve(pieces.size());
  for (std::size_t i = 0; i < pieces.size(); ++i) v.emplace(pieces[i].first, static_cast<uint32_t>(i));
  return v;
}

UnigramModel::UnigramModel(const std::vector<std::pair<std::string, double>>& pieces, std::optional<uint32_t> unk_id,
                           bool byte_fallback)
    : Model(make_vocab(pieces)), unk_id_(unk_id), byte_fallback_(byte_fallback) {
  PTUNE_CHECK(!unk_id || *unk_id < pieces.size(), "Unigram: unk_id {} is outside the vocabulary", *unk_id);
  min_score_ = pieces.empty() ? 0.0 : pieces[0].second;
  scores_.reserve(pieces.size());
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const auto& [token, score] = pieces[i];
    scores_.push_back(score);
    min_score_ = std::min(min_score_, score);
    uint32_t node = 0;
    for (char ch : token) {
      const auto b = static_cast<unsigned char>(ch);
      auto& children = trie_[node].children;
      auto it = std::lower_bound(children.begin(), children.end(), b,
                                 [](const auto& c, unsigned char key) { return c.first < key; });
      if (it != children.end() && it->first == b) {
        node = it->second;
      } else {
        const auto next = static_cast<uint32_t>(trie_.size());
        children.insert(it, {b, next});
        trie_.emplace_back();
        node = next;
      }
    }
    // A token listed twice keeps its first id, as HF's map insertion.
    if (trie_[node].id < 0 && !token.empty()) trie_[node].id = static_cast<int32_t>(vocab_.at(token));
  }
}

void UnigramModel::tokenize(std::string_view s, std::vector<Token>& out) const {
  if (s.empty()) return;
  struct Best {
    int32_t id = -1;
    double score = 0.0;
    int64_t starts_at = -1;
  };
  const std::size_t n = s.size();
  const double unk_score = min_score_ - kUnkPenalty;
  std::vector<Best> best(n + 1);
  for (std::size_t start = 0; start < n;) {
    const double here = best[start].score;
    const std::size_t char_len = utf8_length(static_cast<unsigned char>(s[start]));
    bool has_single = false;
    // Every vocabulary piece that starts here, shortest first.
    uint32_t node = 0;
    for (std::size_t k = start; k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[k]);
      const auto& children = trie_[node].children;
      const auto it = std::lower_bound(children.begin(), children.end(), b,
                                       [](const auto& c, unsigned char key) { return c.first < key; });
      if (it == children.end() || it->first != b) break;
      node = it->second;
      const int32_t id = trie_[node].id;
      if (id < 0) continue;
      Best& target = best[k + 1];
      const double candidate = scores_[id] + here;
      if (target.starts_at < 0 || candidate > target.score) target = {id, candidate, static_cast<int64_t>(start)};
      if (k + 1 - start == char_len) has_single = true;
    }
    if (!has_single) {
      PTUNE_CHECK(unk_id_.has_value(), "Unigram: '{}' needs the unk token but the model has no unk_id",
                  s.substr(start, char_len));
      Best& target = best[start + char_len];
      const double candidate = unk_score + here;
      if (target.starts_at < 0 || candidate > target.score) {
        target = {static_cast<int32_t>(*unk_id_), candidate, static_cast<int64_t>(start)};
      }
    }
    start += char_len;
  }
  // Walk back; adjacent unknown pieces fuse into one.
  std::vector<Offsets> pieces;
  std::size_t end = n;
  std::optional<Offsets> unk_run;
  while (end > 0) {
    const Best& node = best[end];
    const auto start = static_cast<std::size_t>(node.starts_at);
    if (unk_id_ && node.id == static_cast<int32_t>(*unk_id_)) {
      unk_run = Offsets{start, unk_run ? unk_run->end : end};
    } else {
      if (unk_run) pieces.push_back(*unk_run);
      unk_run.reset();
      pieces.push_back({start, end});
    }
    end = start;
  }
  if (unk_run) pieces.push_back(*unk_run);
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
    const std::string_view piece = s.substr(it->begin, it->end - it->begin);
    if (const auto id = token_to_id(piece)) {
      out.push_back({*id, std::string(piece), *it});
      continue;
    }
    if (byte_fallback_) {
      std::vector<uint32_t> bytes;
      for (char ch : piece) {
        const auto id = token_to_id(fmt::format("<0x{:02X}>", static_cast<unsigned char>(ch)));
        if (!id) break;
        bytes.push_back(*id);
      }
      if (bytes.size() == piece.size()) {
        for (std::size_t k = 0; k < bytes.size(); ++k) {
          out.push_back({bytes[k], fmt::format("<0x{:02X}>", static_cast<unsigned char>(piece[k])), *it});
        }
        continue;
      }
    }
    PTUNE_CHECK(unk_id_.has_value(), "Unigram: '{}' is unknown and the model has no unk_id", piece);
    out.push_back({*unk_id_, std::string(piece), *it});
  }
}

// ---------------------------------------------------------------- loading

namespace {

Vocab parse_vocab(const JsonView& j) {
  if (!j.is_object()) j.fail("expected an object of token: id");
  Vocab vocab;
  vocab.reserve(j.raw().size());
  for (const auto& item : j.raw().items()) vocab.emplace(item.key(), j.at(item.key()).id());
  return vocab;
}

std::vector<std::pair<std::string, std::string>> parse_merges(const JsonView& j) {
  std::vector<std::pair<std::string, std::string>> merges;
  const std::size_t n = j.size();
  merges.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const JsonView m = j.at(i);
    if (m.is_string()) {
      // Older format: "a b".
      const std::string s = m.str();
      const std::size_t space = s.find(' ', 1);
      if (space == std::string::npos) m.fail("expected a merge \"left right\"");
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else {
      if (!m.is_array() || m.size() != 2) m.fail("expected a merge [left, right]");
      merges.emplace_back(m.at(0).str(), m.at(1).str());
    }
  }
  return merges;
}

std::optional<std::string> optional_string(const JsonView& j, std::string_view key) {
  const auto v = j.find(key);
  if (!v) return std::nullopt;
  return v->str();
}

}  // namespace

std::unique_ptr<Model> make_model(const JsonView& j) {
  // HF writes "type"; very old files omit it and are told apart by keys.
  std::string type;
  if (const auto t = j.find("type")) {
    type = t->str();
  } else if (j.has("merges")) {
    type = "BPE";
  } else if (j.has("max_input_chars_per_word")) {
    type = "WordPiece";
  } else {
    j.fail("missing key 'type'");
  }
  if (type == "BPE") {
    if (const auto dropout = j.find("dropout")) {
      PTUNE_CHECK(dropout->number() == 0.0 || dropout->number() == 1.0,
                  "tokenizer.json: key 'model.dropout': BPE dropout is a training-time option and is not supported");
    }
    BpeOptions o;
    o.unk_token = optional_string(j, "unk_token");
    o.continuing_subword_prefix = optional_string(j, "continuing_subword_prefix").value_or("");
    o.end_of_word_suffix = optional_string(j, "end_of_word_suffix").value_or("");
    o.fuse_unk = j.bool_or("fuse_unk", false);
    o.byte_fallback = j.bool_or("byte_fallback", false);
    o.ignore_merges = j.bool_or("ignore_merges", false);
    return std::make_unique<BpeModel>(parse_vocab(j.at("vocab")), parse_merges(j.at("merges")), std::move(o));
  }
  if (type == "WordPiece") {
    return std::make_unique<WordPieceModel>(parse_vocab(j.at("vocab")), j.str_or("unk_token", "[UNK]"),
                                            j.str_or("continuing_subword_prefix", "##"),
                                            static_cast<std::size_t>(j.int_or("max_input_chars_per_word", 100)));
  }
  if (type == "Unigram") {
    const JsonView list = j.at("vocab");
    std::vector<std::pair<std::string, double>> pieces;
    pieces.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      const JsonView p = list.at(i);
      if (!p.is_array() || p.size() != 2) p.fail("expected [token, score]");
      pieces.emplace_back(p.at(0).str(), p.at(1).number());
    }
    std::optional<uint32_t> unk;
    if (const auto u = j.find("unk_id")) unk = u->id();
    return std::make_unique<UnigramModel>(pieces, unk, j.bool_or("byte_fallback", false));
  }
  if (type == "WordLevel") {
    return std::make_unique<WordLevelModel>(parse_vocab(j.at("vocab")), j.str_or("unk_token", "<unk>"));
  }
  j.at("type").fail(fmt::format("unsupported model type '{}'", type));
}

std::unique_ptr<Model> load_bpe_files(const std::string& vocab_json, const std::string& merges_txt) {
  nlohmann::json vj;
  try {
    vj = nlohmann::json::parse(read_file(vocab_json));
  } catch (const nlohmann::json::exception& e) {
    PTUNE_FAIL("{}: invalid JSON: {}", vocab_json, e.what());
  }
  const JsonView root(vj, vocab_json);
  Vocab vocab;
  if (!vj.is_object()) root.fail("expected an object of token: id");
  for (const auto& [token, id] : vj.items()) vocab.emplace(token, JsonView(id, vocab_json, token).id());
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream in(read_file(merges_txt));
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const std::size_t space = line.find(' ');
    PTUNE_CHECK(space != std::string::npos && space > 0, "{}:{}: expected 'left right'", merges_txt, line_no);
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return std::make_unique<BpeModel>(std::move(vocab), merges, BpeOptions{});
}

std::unique_ptr<Model> load_wordpiece_file(const std::string& vocab_txt) {
  std::istringstream in(read_file(vocab_txt));
  Vocab vocab;
  std::string line;
  uint32_t id = 0;
  while (std::getline(in, line)) {
    // HF trims the end of each line.
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    vocab.emplace(line, id++);
  }
  return std::make_unique<WordPieceModel>(std::move(vocab), "[UNK]", "##", 100);
}

}  // namespace ptune::text
