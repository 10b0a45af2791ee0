// Golden tests: ptune's tokenizers against the Python `tokenizers` package
// (fixtures from tests/golden/gen_tokenizer_fixtures.py). Every field of
// every record must match: ids, type ids, masks, byte offsets, decodes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "framework/core/error.h"
#include "framework/text/tokenizer.h"
#include "text/golden_util.h"

namespace ptune::text {
namespace {

std::optional<Truncation> truncation_from(const nlohmann::json& j) {
  if (j.is_null()) return std::nullopt;
  Truncation t;
  t.max_length = j.at("max_length").get<std::size_t>();
  const std::string s = j.at("strategy").get<std::string>();
  t.strategy = s == "longest_first" ? TruncationStrategy::kLongestFirst
               : s == "only_first"  ? TruncationStrategy::kOnlyFirst
                                    : TruncationStrategy::kOnlySecond;
  t.direction = j.at("direction").get<std::string>() == "left" ? Side::kLeft : Side::kRight;
  return t;
}

std::optional<Padding> padding_from(const nlohmann::json& j) {
  if (j.is_null()) return std::nullopt;
  Padding p;
  p.direction = j.at("direction").get<std::string>() == "left" ? Side::kLeft : Side::kRight;
  p.pad_id = j.at("pad_id").get<uint32_t>();
  p.pad_type_id = j.at("pad_type_id").get<uint32_t>();
  p.pad_token = j.at("pad_token").get<std::string>();
  if (j.contains("length") && !j.at("length").is_null()) p.length = j.at("length").get<std::size_t>();
  if (j.contains("pad_to_multiple_of") && !j.at("pad_to_multiple_of").is_null()) {
    p.pad_to_multiple_of = j.at("pad_to_multiple_of").get<std::size_t>();
  }
  return p;
}

void check_corpus(const std::string& name) {
  const std::filesystem::path dir = fixture_dir(name);
  Tokenizer tok = Tokenizer::from_file(dir / "tokenizer.json");
  const auto default_truncation = tok.truncation();
  const auto default_padding = tok.padding();
  std::ifstream in(dir / "corpus.jsonl");
  ASSERT_TRUE(in.good()) << dir;
  std::string line;
  std::size_t n = 0, matched = 0;
  while (std::getline(in, line)) {
    const nlohmann::json r = nlohmann::json::parse(line);
    ++n;
    if (r.contains("decode_ids")) {
      const auto ids = r.at("decode_ids").get<std::vector<uint32_t>>();
      const bool ok = tok.decode(ids, true) == r.at("decoded").get<std::string>() &&
                      tok.decode(ids, false) == r.at("decoded_raw").get<std::string>();
      EXPECT_EQ(tok.decode(ids, true), r.at("decoded").get<std::string>()) << line;
      EXPECT_EQ(tok.decode(ids, false), r.at("decoded_raw").get<std::string>()) << line;
      matched += ok;
      continue;
    }
    tok.set_truncation(r.contains("truncation") ? truncation_from(r.at("truncation")) : default_truncation);
    tok.set_padding(r.contains("padding") ? padding_from(r.at("padding")) : default_padding);
    const std::string text = r.at("text").get<std::string>();
    const bool add = r.at("add_special_tokens").get<bool>();
    const bool pair = r.contains("pair");
    auto run = [&]() {
      return pair ? tok.encode_pair(text, r.at("pair").get<std::string>(), add) : tok.encode(text, add);
    };
    if (r.contains("error")) {
      EXPECT_THROW(run(), ptune::Error) << line;
      matched += 1;
      continue;
    }
    const Encoding e = run();
    const Record got = to_record(tok, e);
    const Record want = record_from_json(r);
    EXPECT_EQ(got.ids, want.ids) << line;
    EXPECT_EQ(got.type_ids, want.type_ids) << line;
    EXPECT_EQ(got.attention_mask, want.attention_mask) << line;
    EXPECT_EQ(got.special_tokens_mask, want.special_tokens_mask) << line;
    EXPECT_EQ(got.offsets, want.offsets) << line;
    EXPECT_EQ(got.decoded, want.decoded) << line;
    EXPECT_EQ(got.decoded_raw, want.decoded_raw) << line;
    matched += canonical(got) == canonical(want);
  }
  std::printf("[golden] %s corpus: %zu/%zu records match\n", name.c_str(), matched, n);
  EXPECT_EQ(matched, n);
  EXPECT_GT(n, 100u);
}

class TokenizerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerGolden, CorpusMatchesExactly) { check_corpus(GetParam()); }

TEST_P(TokenizerGolden, DatasetLinesMatchExactly) {
  const std::filesystem::path dir = fixture_dir(GetParam());
  const Tokenizer tok = Tokenizer::from_file(dir / "tokenizer.json");
  std::size_t n = 0, matched = 0, shown = 0;
  for_each_dataset_line(dir / "datasets.json", [&](const DatasetLine& l) {
    ++n;
    const Encoding e = l.pair ? tok.encode_pair(l.text, *l.pair) : tok.encode(l.text);
    const std::string got = fnv1a40(canonical(to_record(tok, e)));
    if (got == l.expected_hash) {
      ++matched;
    } else if (shown++ < 10) {
      ADD_FAILURE() << l.source << " line " << l.index << ": " << l.text << (l.pair ? " ||| " + *l.pair : "")
                    << "\n  ours: " << canonical(to_record(tok, e));
    }
  });
  std::printf("[golden] %s datasets: %zu/%zu lines match\n", GetParam().c_str(), matched, n);
  EXPECT_EQ(matched, n);
  EXPECT_GT(n, 20000u);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, TokenizerGolden,
                         ::testing::Values("gpt2", "bert", "roberta", "llama", "xlmr", "qwen", "llama3", "o200k"));

// Component coverage (WordPiece with Punctuation/Digits/added-token flags,
// BPE with prefix/suffix and Split behaviours, Metaspace with byte
// fallback and ignore_merges, WordLevel with inverted Split, Unigram,
// Precompiled from hand-written rules):
// corpus only.
class TokenizerComponentsGolden : public ::testing::TestWithParam<std::string> {};
TEST_P(TokenizerComponentsGolden, CorpusMatchesExactly) { check_corpus(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Components, TokenizerComponentsGolden,
                         ::testing::Values("misc_wordpiece", "misc_bpe", "misc_metaspace", "misc_wordlevel",
                                           "misc_unigram", "misc_precompiled"));

}  // namespace
}  // namespace ptune::text
