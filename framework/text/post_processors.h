// Stage 4: post-processors add the model's special tokens ([CLS] … [SEP],
// <s> … </s>) and type ids to one text or a pair, and may trim offsets.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "framework/text/encoding.h"
#include "framework/text/json_view.h"

namespace ptune::text {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // How many tokens process() adds, so truncation leaves room for them.
  virtual std::size_t added_tokens(bool is_pair) const = 0;
  // encodings: the first text, and the second one for a pair; may be
  // merged into one. The caller concatenates what is left.
  virtual void process(std::vector<Encoding>& encodings, bool add_special_tokens) const = 0;
};

// Offsets of byte-level tokens without their leading/trailing spaces.
void trim_byte_level_offsets(Encoding& e, bool add_prefix_space);

class ByteLevelProcessor final : public PostProcessor {
 public:
  ByteLevelProcessor(bool trim_offsets, bool add_prefix_space)
      : trim_offsets_(trim_offsets), add_prefix_space_(add_prefix_space) {}
  std::size_t added_tokens(bool) const override { return 0; }
  void process(std::vector<Encoding>& encodings, bool add_special_tokens) const override;

 private:
  bool trim_offsets_;
  bool add_prefix_space_;
};

struct SpecialToken {
  std::string token;
  uint32_t id;
};

// [CLS] A [SEP] (B [SEP]), type ids 0 then 1.
class BertProcessor final : public PostProcessor {
 public:
  BertProcessor(SpecialToken sep, SpecialToken cls) : sep_(std::move(sep)), cls_(std::move(cls)) {}
  std::size_t added_tokens(bool is_pair) const override { return is_pair ? 3 : 2; }
  void process(std::vector<Encoding>& encodings, bool add_special_tokens) const override;

 private:
  SpecialToken sep_, cls_;
};

// <s> A </s> (</s> B </s>), all type ids 0, byte-level offsets trimmed.
class RobertaProcessor final : public PostProcessor {
 public:
  RobertaProcessor(SpecialToken sep, SpecialToken cls, bool trim_offsets, bool add_prefix_space)
      : sep_(std::move(sep)), cls_(std::move(cls)), trim_offsets_(trim_offsets), add_prefix_space_(add_prefix_space) {}
  std::size_t added_tokens(bool is_pair) const override { return is_pair ? 4 : 2; }
  void process(std::vector<Encoding>& encodings, bool add_special_tokens) const override;

 private:
  SpecialToken sep_, cls_;
  bool trim_offsets_;
  bool add_prefix_space_;
};

class TemplateProcessor final : public PostProcessor {
 public:
  struct Piece {
    bool is_sequence;   // $A / $B, or a special token
    int sequence = 0;   // 0 for A, 1 for B
    std::string special;
    uint32_t type_id = 0;
  };
  struct Special {
    std::vector<uint32_t> ids;
    std::vector<std::string> tokens;
  };
  TemplateProcessor(std::vector<Piece> single, std::vector<Piece> pair,
                    std::unordered_map<std::string, Special> special_tokens);
  std::size_t added_tokens(bool is_pair) const override;
  void process(std::vector<Encoding>& encodings, bool add_special_tokens) const override;

 private:
  std::vector<Piece> single_, pair_;
  std::unordered_map<std::string, Special> special_tokens_;
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  std::size_t added_tokens(bool is_pair) const override;
  void process(std::vector<Encoding>& encodings, bool add_special_tokens) const override;

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// tokenizer.json's "post_processor" section (nullptr for null).
std::unique_ptr<PostProcessor> make_post_processor(const JsonView& j);

}  // namespace ptune::text
