// Tokenizers: a tokenizer.json's text (the first byte picks how the rest is
// used), or arbitrary bytes encoded by each fixture tokenizer, as a
// sentence and as the second of a pair.
#include <memory>
#include <string>
#include <vector>

#include "framework/text/tokenizer.h"
#include "fuzz_util.h"

namespace {
const std::vector<ptune::text::Tokenizer>& fixtures() {
  static const auto* all = [] {
    auto* v = new std::vector<ptune::text::Tokenizer>;
    for (const char* name : {"gpt2", "bert", "roberta", "llama", "xlmr", "qwen", "llama3", "o200k", "misc_bpe",
                             "misc_metaspace", "misc_precompiled", "misc_unigram", "misc_wordlevel",
                             "misc_wordpiece"})
      v->push_back(ptune::text::Tokenizer::from_file(std::string(PTUNE_FIXTURES) + "/tokenizers/" + name +
                                                     "/tokenizer.json"));
    return v;
  }();
  return *all;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = ptune::fuzz::text(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    ptune::fuzz::expect_clean([&] {
      const auto tok = ptune::text::Tokenizer::from_json(rest, "fuzz.json");
      (void)tok.encode("Hello world, ünïcode 123!");
    });
  } else {
    const auto& all = fixtures();
    const auto& tok = all[(data[0] / 2) % all.size()];
    ptune::fuzz::expect_clean([&] { (void)tok.encode(rest); });
    ptune::fuzz::expect_clean([&] { (void)tok.encode_pair("premise", rest); });
  }
  return 0;
}
