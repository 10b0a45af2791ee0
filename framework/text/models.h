// Stage 3: the model turns one word into vocabulary tokens: BPE (merges,
// byte fallback), WordPiece (greedy longest match), WordLevel.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "framework/text/json_view.h"
#include "framework/text/pre_tokenized_string.h"

namespace ptune::text {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// token → id, with lookups by string_view.
using Vocab = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;

class Model {
 public:
  virtual ~Model() = default;
  // Appends the tokens of `word`; their offsets are bytes of `word`.
  virtual void tokenize(std::string_view word, std::vector<Token>& out) const = 0;
  std::optional<uint32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(uint32_t id) const;
  std::size_t vocab_size() const { return vocab_.size(); }
  const Vocab& vocab() const { return vocab_; }

 protected:
  explicit Model(Vocab vocab);

  Vocab vocab_;
  std::vector<const std::string*> vocab_r_;  // id → token (nullptr for holes)
};

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel final : public Model {
 public:
  // merges: pairs of tokens, by priority.
  BpeModel(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options);
  void tokenize(std::string_view word, std::vector<Token>& out) const override;

 private:
  struct Piece {
    uint32_t id;
    uint32_t len;  // bytes of the word
  };
  struct MergeTarget {
    uint32_t rank;
    uint32_t new_id;
  };
  std::vector<Piece> merge_word(std::string_view word) const;
  const MergeTarget* find_merge(uint32_t a, uint32_t b) const;
  void add_merge(uint64_t key, MergeTarget target);

  BpeOptions options_;
  std::optional<uint32_t> unk_id_;
  // (left id, right id) → merge: open addressing, linear probing. Merge
  // lookups are most of BPE's time, and std::unordered_map's are slow.
  struct MergeSlot {
    uint64_t key;  // kEmptyKey when free
    MergeTarget target;
  };
  std::vector<MergeSlot> merge_slots_;
  unsigned merge_shift_ = 64;
  std::array<std::optional<uint32_t>, 256> byte_ids_;  // <0xXX> tokens for byte fallback

  // Words seen before, as in HF; bounded, never evicted.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<Piece>, StringHash, std::equal_to<>> cache_;
};

class WordPieceModel final : public Model {
 public:
  WordPieceModel(Vocab vocab, std::string unk_token, std::string continuing_subword_prefix,
                 std::size_t max_input_chars_per_word);
  void tokenize(std::string_view word, std::vector<Token>& out) const override;

 private:
  std::string unk_token_;
  uint32_t unk_id_;
  std::string prefix_;
  std::size_t max_input_chars_per_word_;
};

class WordLevelModel final : public Model {
 public:
  WordLevelModel(Vocab vocab, std::string unk_token);
  void tokenize(std::string_view word, std::vector<Token>& out) const override;

 private:
  std::string unk_token_;
};

// SentencePiece's unigram model: the segmentation of highest total score
// (Viterbi), unknown characters as one unk each, fused when adjacent.
class UnigramModel final : public Model {
 public:
  // pieces: (token, log probability) in id order.
  UnigramModel(const std::vector<std::pair<std::string, double>>& pieces, std::optional<uint32_t> unk_id,
               bool byte_fallback);
  void tokenize(std::string_view word, std::vector<Token>& out) const override;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> children;  // sorted by byte
    int32_t id = -1;
  };
  static Vocab make_vocab(const std::vector<std::pair<std::string, double>>& pieces);

  std::vector<double> scores_;
  std::vector<Node> trie_{1};
  std::optional<uint32_t> unk_id_;
  bool byte_fallback_;
  double min_score_;
};

// tokenizer.json's "model" section.
std::unique_ptr<Model> make_model(const JsonView& j);

// Legacy files: vocab.json + merges.txt (GPT-2 / RoBERTa) and vocab.txt (BERT).
std::unique_ptr<Model> load_bpe_files(const std::string& vocab_json, const std::string& merges_txt);
std::unique_ptr<Model> load_wordpiece_file(const std::string& vocab_txt);

}  // namespace ptune::text
