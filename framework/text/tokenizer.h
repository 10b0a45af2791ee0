// A Hugging Face tokenizer, loaded from a model directory and reproduced
// exactly: added tokens → normalizer → pre-tokenizer → model →
// truncation → post-processor → padding, and decoders for the way back.
//
//   auto tok = ptune::text::Tokenizer::from_directory("models/bert");
//   Encoding e = tok.encode_pair("premise", "hypothesis");
//   std::string s = tok.decode(e.ids);
//
// Input text must be valid UTF-8 (as for Hugging Face, whose API only takes
// valid strings): encode() throws ptune::Error naming the first bad byte.
// Offsets are byte offsets into the given text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "framework/text/added_vocabulary.h"
#include "framework/text/decoders.h"
#include "framework/text/encoding.h"
#include "framework/text/models.h"
#include "framework/text/normalizers.h"
#include "framework/text/post_processors.h"
#include "framework/text/pre_tokenizers.h"

namespace ptune::text {

class Tokenizer {
 public:
  // A tokenizer.json file.
  static Tokenizer from_file(const std::filesystem::path& path);
  // The contents of a tokenizer.json; origin names it in errors.
  static Tokenizer from_json(std::string_view json, std::string_view origin = "tokenizer.json");
  // tokenizer.json, else vocab.json + merges.txt (GPT-2, or RoBERTa when
  // tokenizer_config.json says so), else vocab.txt (BERT).
  static Tokenizer from_directory(const std::filesystem::path& dir);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  Encoding encode(std::string_view text, bool add_special_tokens = true) const;
  Encoding encode_pair(std::string_view first, std::string_view second, bool add_special_tokens = true) const;
  // One word of pre-split input (transformers' is_split_into_words=True,
  // token classification): the word alone through added tokens,
  // normalizer, pre-tokenizer and model; no special tokens, no truncation
  // or padding. A GPT-2 / RoBERTa-style byte-level pre-tokenizer gets the
  // word's leading space (transformers refuses pre-split input for them
  // unless add_prefix_space=True, so that is how they are used); other
  // tokenizers encode the word as their tokenizer.json says. Offsets are
  // into `word`.
  Encoding encode_word(std::string_view word) const;
  // Unknown ids are skipped, as in HF.
  std::string decode(std::span<const uint32_t> ids, bool skip_special_tokens = true) const;

  std::optional<uint32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(uint32_t id) const;
  // Model vocabulary plus added tokens that are not in it.
  std::size_t vocab_size() const;

  const std::optional<Truncation>& truncation() const { return truncation_; }
  void set_truncation(std::optional<Truncation> t) { truncation_ = std::move(t); }
  const std::optional<Padding>& padding() const { return padding_; }
  void set_padding(std::optional<Padding> p) { padding_ = std::move(p); }

 private:
  Tokenizer();
  Encoding encode_sequence(std::string_view text, uint32_t type_id, int32_t sequence) const;
  Encoding post_process(Encoding first, std::optional<Encoding> second, bool add_special_tokens) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  std::optional<Truncation> truncation_;
  std::optional<Padding> padding_;
};

}  // namespace ptune::text
