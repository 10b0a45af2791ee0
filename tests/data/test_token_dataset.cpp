// Token classification input: words → ids and per-token tags, golden against
// transformers' run_ner.py alignment (fixtures/data/trec_words_golden.json,
// made by tests/golden/gen_data_fixtures.py from trec/train.jsonl), batches,
// prompt-tuning prefixes, truncation, and the errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include <sstream>

#include "framework/core/arena.h"
#include "framework/data/batch.h"
#include "framework/data/dataset.h"
#include "framework/io/json_file.h"
#include "data/fixture_tokenizer.h"
#include "expect_error.h"

namespace ptune::data {
namespace {

using model::TaskKind;
using testing::error_of;

text::Tokenizer tokenizer(const std::string& name) { return testing::fixture_tokenizer(name); }

const std::vector<std::string> kTags = {"O", "B-CAP", "I-CAP"};

// The generator's words and tags: the question split on whitespace; a
// capitalised word is B-CAP, or I-CAP right after another capitalised one.
std::vector<Record> trec_words(int64_t lines) {
  const std::vector<Record> rows = read_records(std::string(PTUNE_DATASETS) + "/trec/train.jsonl");
  std::vector<Record> out;
  for (int64_t i = 0; i < lines; ++i) {
    std::istringstream in(*rows[size_t(i)].find("question"));
    std::vector<std::string> words, tags;
    bool prev = false;
    for (std::string w; in >> w;) {
      const bool cap = w[0] >= 'A' && w[0] <= 'Z';
      tags.push_back(kTags[!cap ? 0 : prev ? 2 : 1]);
      words.push_back(w);
      prev = cap;
    }
    Record r;
    r.line = rows[size_t(i)].line;
    r.lists = {{"tokens", words}, {"ner_tags", tags}};
    out.push_back(std::move(r));
  }
  return out;
}

DataOptions ner_options(int64_t max_length) {
  DataOptions o;
  o.label_field = "ner_tags";
  o.labels = kTags;
  o.max_length = max_length;
  return o;
}

TemplateContext tagging(int64_t prepend = 0) {
  TemplateContext c;
  c.task = TaskKind::kTokenClassification;
  c.prepend = prepend;
  return c;
}

class WordsGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(WordsGolden, IdsAndFirstSubwordTagsMatchRunNer) {
  const std::string name = GetParam();
  const nlohmann::json g = io::read_json_file(std::string(PTUNE_FIXTURES) + "/data/trec_words_golden.json");
  ASSERT_EQ(g["labels"].get<std::vector<std::string>>(), kTags);
  const int64_t lines = g["lines"].get<int64_t>();
  const std::vector<Record> records = trec_words(lines);
  const text::Tokenizer tok = tokenizer(name);
  for (const int64_t L : {128, 12}) {
    const Dataset d = Dataset::from_records(records, "trec", ner_options(L), tok, tagging());
    const nlohmann::json& want = g["tokenizers"][name][std::to_string(L)];
    ASSERT_EQ(int64_t(want.size()), d.size());
    int truncated = 0;
    for (int64_t i = 0; i < d.size(); ++i) {
      SCOPED_TRACE(name + " max_length " + std::to_string(L) + " line " + std::to_string(i + 1));
      EXPECT_EQ(d[i].ids, want[size_t(i)]["ids"].get<std::vector<int32_t>>());
      EXPECT_EQ(d[i].tags, want[size_t(i)]["labels"].get<std::vector<int32_t>>());
      EXPECT_EQ(d[i].type_ids, std::vector<int32_t>(d[i].ids.size(), 0));
      // tag_words: the tagged words in order, each a word of the record.
      const std::vector<std::string>& words = *records[size_t(i)].find_list("tokens");
      EXPECT_EQ(d[i].words, int32_t(words.size()));
      std::vector<int32_t> tagged;
      for (size_t t = 0; t < d[i].tags.size(); ++t)
        if (d[i].tags[t] != kIgnoreIndex) tagged.push_back(int32_t(t));
      ASSERT_EQ(tagged.size(), d[i].tag_words.size());
      for (size_t k = 0; k + 1 < d[i].tag_words.size(); ++k) EXPECT_LT(d[i].tag_words[k], d[i].tag_words[k + 1]);
      truncated += int(d[i].tag_words.size()) < d[i].words;
    }
    if (L == 12) EXPECT_GT(truncated, 0) << "the short max_length must truncate some lines";
    DataOptions all = ner_options(L);
    all.label_all_tokens = true;
    const Dataset every = Dataset::from_records(records, "trec", all, tok, tagging());
    for (int64_t i = 0; i < every.size(); ++i)
      EXPECT_EQ(every[i].tags, want[size_t(i)]["labels_all"].get<std::vector<int32_t>>()) << name << " line " << i + 1;
    EXPECT_EQ(d.truncated(), truncated);  // every word of these questions has a token: lost tags = cut words
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, WordsGolden, ::testing::Values("bert", "roberta", "gpt2", "llama"),
                         [](const auto& info) { return std::string(info.param); });

TEST(TokenDataset, PromptTuningPrependsUntaggedVirtualTokens) {
  const std::vector<Record> records = trec_words(3);
  const text::Tokenizer tok = tokenizer("bert");
  const Dataset plain = Dataset::from_records(records, "trec", ner_options(40), tok, tagging());
  const Dataset prompted = Dataset::from_records(records, "trec", ner_options(40), tok, tagging(4));
  EXPECT_EQ(prompted.num_virtual_tokens(), 4);
  for (int64_t i = 0; i < 3; ++i) {
    ASSERT_LE(plain[i].ids.size() + 4, 40u) << "these lines fit max_length 40 with the virtual tokens";
    std::vector<int32_t> ids = {-1, -2, -3, -4}, tags(4, kIgnoreIndex);
    ids.insert(ids.end(), plain[i].ids.begin(), plain[i].ids.end());
    tags.insert(tags.end(), plain[i].tags.begin(), plain[i].tags.end());
    EXPECT_EQ(prompted[i].ids, ids);
    EXPECT_EQ(prompted[i].tags, tags);
    EXPECT_EQ(prompted[i].tag_words, plain[i].tag_words);
  }
}

TEST(TokenDataset, BatchPadsTagsWithIgnoreAndCountsTaggedTokens) {
  const std::vector<Record> records = trec_words(4);
  const Dataset d = Dataset::from_records(records, "trec", ner_options(64), tokenizer("bert"), tagging());
  Arena arena;
  Batch b;
  const std::vector<int64_t> idx = {0, 1, 2, 3};
  collate(d, idx, b, arena);
  ASSERT_TRUE(b.tags.defined());
  int64_t tagged = 0;
  for (int64_t r = 0; r < 4; ++r) {
    const Example& ex = d[r];
    for (int64_t t = 0; t < b.length(); ++t) {
      const int32_t want = t < int64_t(ex.tags.size()) ? ex.tags[size_t(t)] : kIgnoreIndex;
      EXPECT_EQ(b.tags.data<int32_t>()[r * b.length() + t], want);
    }
    tagged += int64_t(ex.tag_words.size());
  }
  EXPECT_EQ(b.label_tokens, tagged);
  EXPECT_GT(tagged, 0);
}

TEST(TokenDataset, JsonlListsFromAFile) {
  const std::string text =
      "{\"tokens\": [\"EU\", \"rejects\", \"German\", \"call\"], \"ner_tags\": [\"B-CAP\", \"O\", \"B-CAP\", \"O\"]}\n"
      "{\"tokens\": [], \"ner_tags\": []}\n";
  const std::vector<Record> records = parse_records(text, Format::kJsonl, "ner.jsonl");
  const Dataset d = Dataset::from_records(records, "ner.jsonl", ner_options(32), tokenizer("bert"), tagging());
  ASSERT_EQ(d.size(), 2);
  EXPECT_EQ(d[0].tag_words, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(d[1].ids.size(), 2u);  // [CLS] [SEP]: a sentence without words tags nothing
  EXPECT_TRUE(d[1].tag_words.empty());
}

TEST(TokenDataset, ConllFilesGiveWhatJsonlGives) {
  const std::string jsonl =
      "{\"tokens\": [\"EU\", \"rejects\", \"German\"], \"ner_tags\": [\"B-CAP\", \"O\", \"B-CAP\"]}\n"
      "{\"tokens\": [\"Peter\", \"Blackburn\"], \"ner_tags\": [\"B-CAP\", \"I-CAP\"]}\n";
  const std::string conll = "-DOCSTART- O\n\nEU B-CAP\nrejects O\nGerman B-CAP\n\nPeter B-CAP\nBlackburn I-CAP\n";
  const text::Tokenizer tok = tokenizer("bert");
  const Dataset a = Dataset::from_records(parse_records(jsonl, Format::kJsonl, "a.jsonl"), "a.jsonl",
                                          ner_options(32), tok, tagging());
  const Dataset b = Dataset::from_records(parse_records(conll, Format::kConll, "b.conll"), "b.conll",
                                          ner_options(32), tok, tagging());
  ASSERT_EQ(a.size(), b.size());
  for (int64_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].ids, b[i].ids);
    EXPECT_EQ(a[i].tags, b[i].tags);
  }
}

// ptune predict reads records without their labels; labels that are there
// are still checked.
TEST(TokenDataset, PredictionInputNeedsNoLabels) {
  const text::Tokenizer tok = tokenizer("bert");
  TemplateContext predict = tagging();
  predict.labels_required = false;
  const std::string text = "{\"tokens\": [\"EU\", \"rejects\"]}\n{\"tokens\": [\"a\"], \"ner_tags\": [\"O\"]}\n";
  const Dataset d = Dataset::from_records(parse_records(text, Format::kJsonl, "p.jsonl"), "p.jsonl", ner_options(32),
                                          tok, predict);
  EXPECT_EQ(d[0].tag_words, (std::vector<int32_t>{0, 1}));
  for (int32_t y : d[0].tags) EXPECT_TRUE(y == kIgnoreIndex || y == kUnlabeled);
  EXPECT_EQ(std::count(d[0].tags.begin(), d[0].tags.end(), kUnlabeled), 2);
  EXPECT_EQ(std::count(d[1].tags.begin(), d[1].tags.end(), 0), 1);  // "O", kept
  EXPECT_NE(error_of([&] {
              Dataset::from_records(parse_records("{\"tokens\": [\"a\"], \"ner_tags\": [\"X\"]}\n", Format::kJsonl,
                                                  "p.jsonl"),
                                    "p.jsonl", ner_options(32), tok, predict);
            }).find("p.jsonl:1: tag 'X' of word 1"),
            std::string::npos);

  DataOptions cls;
  cls.labels = {"neg", "pos"};
  TemplateContext classify;
  classify.labels_required = false;
  const Dataset c = Dataset::from_records(
      parse_records("{\"sentence\": \"fine\"}\n{\"sentence\": \"bad\", \"label\": \"neg\"}\n", Format::kJsonl,
                    "c.jsonl"),
      "c.jsonl", cls, tok, classify);
  EXPECT_EQ(c[0].label, kUnlabeled);
  EXPECT_EQ(c[1].label, 0);
}

// Raw sentences (a text, not a list) are split on whitespace.
TEST(TokenDataset, ATextOfWordsIsSplitOnWhitespace) {
  const std::string text =
      "{\"tokens\": [\"EU\", \"rejects\", \"German\"], \"ner_tags\": [\"B-CAP\", \"O\", \"B-CAP\"]}\n"
      "{\"tokens\": \"  EU rejects\\tGerman \", \"ner_tags\": [\"B-CAP\", \"O\", \"B-CAP\"]}\n";
  const Dataset d = Dataset::from_records(parse_records(text, Format::kJsonl, "t.jsonl"), "t.jsonl", ner_options(32),
                                          tokenizer("bert"), tagging());
  EXPECT_EQ(d[1].ids, d[0].ids);
  EXPECT_EQ(d[1].tags, d[0].tags);
  EXPECT_EQ(d[1].words, 3);
}

TEST(TokenDataset, ErrorsNameFileLineAndWord) {
  const text::Tokenizer tok = tokenizer("bert");
  auto build = [&](const std::string& text, DataOptions o = ner_options(32)) {
    return error_of([&] {
      Dataset::from_records(parse_records(text, Format::kJsonl, "ner.jsonl"), "ner.jsonl", o, tok, tagging());
    });
  };
  EXPECT_NE(build("{\"tokens\": [\"a\"], \"ner_tags\": [\"B-PER\"]}\n")
                .find("ner.jsonl:1: tag 'B-PER' of word 1 ('a') is not in the label set [O, B-CAP, I-CAP]"),
            std::string::npos);
  EXPECT_NE(build("{\"tokens\": [\"a\", \"b\"], \"ner_tags\": [\"O\"]}\n")
                .find("ner.jsonl:1: 2 words in 'tokens' but 1 tags in 'ner_tags'"),
            std::string::npos);
  EXPECT_NE(build("{\"tokens\": \"a b\", \"ner_tags\": [\"O\"]}\n")
                .find("ner.jsonl:1: 2 words in 'tokens' but 1 tags in 'ner_tags'"),
            std::string::npos);
  EXPECT_NE(build("{\"tokens\": [\"a\"], \"ner_tags\": \"O\"}\n")
                .find("ner.jsonl:1: the tags field 'ner_tags' is a text, not a list"),
            std::string::npos);
  EXPECT_NE(build("{\"tokens\": [\"a\"]}\n").find("ner.jsonl:1: the tags field 'ner_tags' is missing"),
            std::string::npos);
  DataOptions slots = ner_options(32);
  slots.text = "[P*2]{sentence}";
  EXPECT_NE(build("{\"tokens\": [\"a\"], \"ner_tags\": [\"O\"]}\n", slots)
                .find("token classification reads the words of data.tokens_field ('tokens')"),
            std::string::npos);
  EXPECT_NE(build("{\"tokens\": [\"a\"], \"ner_tags\": [\"O\"]}\n", ner_options(1))
                .find("ner.jsonl:1: the special and virtual tokens take 2 tokens, more than max_length 1"),
            std::string::npos);
}

}  // namespace
}  // namespace ptune::data
