// A dataset built from fuzzed templates and JSONL records: the input is
// "SETTINGS TEXT \x1f TEXT_PAIR \x1f RECORDS", SETTINGS one byte (task,
// truncation, prepended virtual tokens, tokenizer, labels required) and one
// for max_length. Besides "only ptune::Error for bad input", every example
// that builds must keep the dataset's promises: at most max_length tokens,
// a label inside the label set, a [MASK] position inside the example, one
// type id and (causal LM) one label per token, (token classification) one
// tag per token inside the label set and tag_words naming those tags'
// words in order.
#include <cstdlib>
#include <string>
#include <vector>

#include "framework/data/dataset.h"
#include "framework/data/reader.h"
#include "framework/text/tokenizer.h"
#include "fuzz_util.h"

namespace {
using namespace ptune;

const text::Tokenizer& tokenizer(int which) {
  static const text::Tokenizer bert =
      text::Tokenizer::from_file(std::string(PTUNE_FIXTURES) + "/tokenizers/bert/tokenizer.json");
  static const text::Tokenizer gpt2 =
      text::Tokenizer::from_file(std::string(PTUNE_FIXTURES) + "/tokenizers/gpt2/tokenizer.json");
  return which ? gpt2 : bert;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "broken promise: %s\n", what);
    std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t settings = data[0];
  std::string_view rest = fuzz::text(data + 2, size - 2);
  std::string parts[3];
  for (int p = 0; p < 2; ++p) {
    const size_t cut = rest.find('\x1f');
    if (cut == std::string_view::npos) return 0;
    parts[p] = std::string(rest.substr(0, cut));
    rest.remove_prefix(cut + 1);
  }
  parts[2] = std::string(rest);

  data::DataOptions o;
  o.text = parts[0];
  o.text_pair = parts[1];
  o.labels = {"0", "1"};
  o.max_length = 1 + data[1] % 64;
  o.truncation = data::Truncation(settings / 4 % 3);
  data::TemplateContext ctx;
  ctx.task = model::TaskKind(settings % 4);
  ctx.prepend = settings / 12 % 3;
  ctx.labels_required = settings / 72 % 2 == 0;
  if (ctx.task == model::TaskKind::kVerbalizer) o.verbalizer = {{"0", "bad"}, {"1", "good"}};
  if (ctx.task == model::TaskKind::kCausalLm) o.answer_field = "answer";
  const text::Tokenizer& tok = tokenizer(settings / 36 % 2);
  fuzz::expect_clean([&] {
    const std::vector<data::Record> records = data::parse_records(parts[2], data::Format::kJsonl, "fuzz.jsonl");
    const data::Dataset d = data::Dataset::from_records(records, "fuzz.jsonl", o, tok, ctx);
    for (int64_t i = 0; i < d.size(); ++i) {
      const data::Example& e = d[i];
      const auto n = int64_t(e.ids.size());
      check(n <= o.max_length, "an example longer than max_length");
      check(e.type_ids.empty() || int64_t(e.type_ids.size()) == n, "type ids of another length");
      check(e.label >= -1 && e.label < 2, "a label outside the label set");
      check(e.mask_position >= -1 && e.mask_position < n, "a mask position outside the example");
      check(e.lm_labels.empty() || int64_t(e.lm_labels.size()) == n, "LM labels of another length");
      if (ctx.task != model::TaskKind::kTokenClassification) continue;
      check(int64_t(e.tags.size()) == n, "tags of another length");
      size_t tagged = 0;
      for (int32_t y : e.tags) {
        check(y == data::kIgnoreIndex || (y >= -1 && y < 2), "a tag outside the label set");
        tagged += y != data::kIgnoreIndex;
      }
      check(tagged == e.tag_words.size(), "tag_words not one per tagged token");
      for (size_t k = 0; k < e.tag_words.size(); ++k)
        check(e.tag_words[k] >= 0 && e.tag_words[k] < e.words && (k == 0 || e.tag_words[k - 1] < e.tag_words[k]),
              "tag_words out of order or range");
    }
  });
  return 0;
}
