// Records + templates → token ids, type ids and labels, ready to batch.
//
// Templates (DataOptions.text, .text_pair) mix literal text with
//   {field}   the record's field (`{{` and `}}` are literal braces),
//   [P*k]     k virtual tokens, [P] one,
//   [MASK]    the tokenizer's mask token ("[MASK]" for BERT, "<mask>" for
//             RoBERTa; an error if the tokenizer has none).
// `text_pair`, when set, is encoded as the second sequence of a pair, so
// the special tokens and type ids are those of the tokenizer's
// post-processor ([CLS] A [SEP] B [SEP], type ids 0…0 1…1 for BERT).
//
// Tokenization (the documented choice): the text between two virtual slots
// — literal text, fields and [MASK] together — is one piece, encoded
// without special tokens exactly as Hugging Face encodes that string, and
// the pieces are spliced with the virtual tokens. So [MASK] keeps HF's
// handling of the added token (RoBERTa's <mask> swallows the space before
// it), and a template without virtual slots gives HF's ids for the whole
// string. Whitespace at the end of a piece that a virtual slot follows is
// dropped (a byte-level BPE would make it a lone "Ġ" token); whitespace
// after a slot is kept (" great" → "Ġgreat", the mid-sentence form).
//
// Virtual tokens are negative ids: virtual token k (0-based, counted left
// to right over the whole example) is -(k+1); type id 0, attention 1.
// TemplateContext.prepend = P puts -1..-P before everything, special tokens
// included (peft's prompt tuning / P-Tuning); a template with slots then is
// an error. num_virtual_tokens() must equal PromptConfig's (the caller
// checks).
//
// Truncation to DataOptions.max_length counts special, virtual, [MASK] and
// answer tokens. Only tokens that come from {field} text are cut (from the
// right of their segment: longest_first with HF's arithmetic on the
// cuttable counts, only_first, only_second); template text, virtual slots,
// [MASK] and the causal-LM answer are never cut. For a template that is
// just "{a}" / "{b}" this is exactly HF's truncation of the pair. If the
// fixed parts alone exceed max_length, the line is an error.
//
// Labels: classification and verbalizer tasks map the label field to its
// index in DataOptions.labels (string compare; an unknown label is an error
// naming FILE:LINE and the label set). Verbalizer words map to one token id
// each (verbalizer_token_ids(), in label order): the word is encoded with a
// leading space, as it appears mid-sentence (byte-level BPE: "Ġgreat";
// BERT ignores the space); if that is not one token, the bare word is
// accepted only when the leading space became a token of its own (Metaspace:
// "▁" + "▁great"); otherwise the word is an error. mask_position is the
// [MASK] index; a verbalizer template without [MASK] (causal LMs) scores
// the last position.
//
// Causal LM: the answer (DataOptions.answer_field) is encoded separately
// without special tokens and appended after the prompt, then the EOS token
// when the tokenizer has one; lm_labels are -100 on prompt and virtual
// positions and the ids on answer/EOS positions, unshifted (HF style: the
// loss shifts). Only the prompt's field text is ever truncated.
//
// Token classification (transformers' run_ner.py with is_split_into_words
// and label_all_tokens=False): the words of DataOptions.tokens_field (a
// list; a text is split on whitespace, so raw sentences can be tagged) are
// encoded one by one (Tokenizer::encode_word) and placed where the
// post-processor puts the first sequence, so [CLS] w1 w2 … [SEP]; the
// templates are not used. Each word's first token carries the class index
// of its tag (label_field, a list as long as the words); its other tokens
// carry -100 (or, with DataOptions.label_all_tokens, the tag too, B-X as
// I-X), special and virtual tokens -100. Truncation cuts word tokens from
// the right; the tags of words cut off (and of words that encode to no
// token) are dropped, as in HF, and tag_words says which words kept theirs.
//
// The tokenizer's own truncation and padding (tokenizer.json may set them)
// are ignored as transformers ignores them: padding is stripped, and a
// piece the tokenizer's truncation may have cut is an error asking to turn
// it off (tokenizer.set_truncation(std::nullopt)).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "framework/data/data_config.h"
#include "framework/data/reader.h"
#include "framework/model/task.h"
#include "framework/text/tokenizer.h"

namespace ptune::data {

inline constexpr int32_t kIgnoreIndex = -100;  // lm_labels and tags on positions without a loss
inline constexpr int32_t kUnlabeled = -1;      // label, or a word's tag, when the record has none (predict)

struct TemplateContext {
  model::TaskKind task = model::TaskKind::kClassification;
  int64_t prepend = 0;  // virtual tokens before everything (prompt tuning, P-Tuning without slots)
  // Overrides of what is otherwise found among the tokenizer's tokens.
  std::optional<std::string> mask_token;  // default: "[MASK]", else "<mask>"
  std::optional<int32_t> eos_id;          // default: "</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>"
  std::optional<int32_t> pad_id;          // default: tokenizer.json's padding, "[PAD]", "<pad>", else 0
  bool append_eos = true;                 // causal LM
  // false (ptune predict): a record without its label field (or tags list)
  // is read without one — label kUnlabeled, and kUnlabeled on each word's
  // first token — to be predicted only; a label that is there is still
  // checked against the label set.
  bool labels_required = true;
};

struct Example {
  std::vector<int32_t> ids, type_ids;  // (T): negative ids are virtual tokens
  int32_t label = kUnlabeled;          // class index (kUnlabeled: none)
  int32_t mask_position = -1;          // [MASK] (or scored) position; -1: none
  std::vector<int32_t> lm_labels;      // (T) causal LM only, else empty
  std::vector<int32_t> tags;           // (T) token classification only: class index, kUnlabeled or -100
  std::vector<int32_t> tag_words;      // token classification: the word of each tagged (≠ -100) position, in order
                                       // (a word repeats with label_all_tokens)
  int32_t words = 0;                   // token classification: words in the record
  bool truncated = false;              // token classification: words were cut at max_length
  int64_t line = 0;                    // where it came from (1-based)
};

class Dataset {
 public:
  static Dataset load(const std::string& path, const DataOptions& options, const text::Tokenizer& tokenizer,
                      const TemplateContext& context);
  // Records already read; origin names them in errors.
  static Dataset from_records(std::span<const Record> records, const std::string& origin, const DataOptions& options,
                              const text::Tokenizer& tokenizer, const TemplateContext& context);

  int64_t size() const { return int64_t(examples_.size()); }
  const Example& operator[](int64_t i) const { return examples_[size_t(i)]; }
  // Per example, its token count (for length bucketing).
  std::vector<int64_t> lengths() const;
  // Token classification: how many examples lost words to max_length.
  int64_t truncated() const;

  int64_t num_virtual_tokens() const { return num_virtual_; }
  // The label set, in class order (DataOptions.labels).
  const std::vector<std::string>& labels() const { return labels_; }
  // One token id per label, in label order (verbalizer tasks; else empty).
  std::vector<int32_t> verbalizer_token_ids() const { return verbalizer_ids_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t mask_id() const { return mask_id_; }  // -1: the tokenizer has none
  int32_t eos_id() const { return eos_id_; }    // -1: none
  model::TaskKind task() const { return task_; }
  const std::string& origin() const { return origin_; }

 private:
  std::vector<Example> examples_;
  std::string origin_;
  int64_t num_virtual_ = 0;
  std::vector<int32_t> verbalizer_ids_;
  std::vector<std::string> labels_;
  int32_t pad_id_ = 0;
  int32_t mask_id_ = -1;
  int32_t eos_id_ = -1;
  model::TaskKind task_ = model::TaskKind::kClassification;
};

// One token id per label of a verbalizer task, in label order, from the
// recipe and the tokenizer alone (the rule under "Labels" above).
std::vector<int32_t> verbalizer_token_ids(const DataOptions& options, const text::Tokenizer& tokenizer);

}  // namespace ptune::data
