// Entity-level NER scores (EntityScorer) against seqeval's default mode;
// references in fixtures/metrics/seqeval.json (gen_seqeval_fixtures.py).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "expect_error.h"
#include "framework/io/json_file.h"
#include "framework/train/metrics.h"

namespace ptune::train {
namespace {

using ptune::testing::expect_error;
using Sequences = std::vector<std::vector<int32_t>>;

nlohmann::json reference() { return io::read_json_file(std::string(PTUNE_FIXTURES) + "/metrics/seqeval.json"); }

EntityScorer score(const std::vector<std::string>& labels, const Sequences& pred, const Sequences& gold, size_t begin,
                   size_t end) {
  EntityScorer scorer(labels);
  for (size_t k = begin; k < end; ++k) scorer.add(pred[k], gold[k]);
  return scorer;
}

TEST(EntityScorer, MatchesSeqeval) {
  int checked = 0;
  const nlohmann::json ref = reference();
  for (const nlohmann::json& c : ref["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto labels = c["labels"].get<std::vector<std::string>>();
    const auto gold = c["gold"].get<Sequences>(), pred = c["pred"].get<Sequences>();
    ASSERT_EQ(gold.size(), pred.size());
    const EntityScorer scorer = score(labels, pred, gold, 0, gold.size());
    ASSERT_TRUE(scorer.applies());
    EXPECT_EQ(scorer.counts().gold, c["nb_true"].get<int64_t>());
    EXPECT_EQ(scorer.counts().predicted, c["nb_pred"].get<int64_t>());
    EXPECT_EQ(scorer.counts().correct, c["nb_correct"].get<int64_t>());
    EXPECT_NEAR(scorer.counts().precision(), c["precision"].get<double>(), 1e-12);
    EXPECT_NEAR(scorer.counts().recall(), c["recall"].get<double>(), 1e-12);
    EXPECT_NEAR(scorer.counts().f1(), c["f1"].get<double>(), 1e-12);
    ++checked;
  }
  EXPECT_EQ(checked, 13);
}

TEST(EntityScorer, HandComputed) {
  // Labels PER (0, 1) and LOC (3); predicted PER (0, 1) and PER (3): P = R = F1 = 1/2.
  EntityScorer scorer({"O", "B-PER", "I-PER", "B-LOC", "I-LOC"});
  EXPECT_EQ(scorer.counts().f1(), 0.0);  // nothing seen
  EXPECT_EQ(scorer.counts().precision(), 0.0);
  EXPECT_EQ(scorer.counts().recall(), 0.0);
  const std::vector<int32_t> gold{1, 2, 0, 3}, pred{1, 2, 0, 1};
  scorer.add(pred, gold);
  EXPECT_EQ(scorer.counts().gold, 2);
  EXPECT_EQ(scorer.counts().predicted, 2);
  EXPECT_EQ(scorer.counts().correct, 1);
  EXPECT_EQ(scorer.counts().f1(), 0.5);
  scorer.add({}, {});  // an empty sequence counts nothing
  EXPECT_EQ(scorer.counts().gold, 2);
  scorer.reset();
  EXPECT_EQ(scorer.counts().predicted, 0);
}

TEST(EntityScorer, AppliesOnlyToChunkTags) {
  EXPECT_TRUE(EntityScorer({"O", "B-PER", "I-PER"}).applies());
  EXPECT_TRUE(EntityScorer({"B-LOC", "O", "I-LOC", "E-LOC", "S-LOC"}).applies());
  EXPECT_TRUE(EntityScorer({"I-PER"}).applies());
  EXPECT_TRUE(EntityScorer({"O", "B-geo-loc"}).applies());
  EXPECT_FALSE(EntityScorer({"NOUN", "VERB", "ADJ", "O"}).applies());  // POS tags
  EXPECT_FALSE(EntityScorer({"O", "B-PER", "PUNCT"}).applies());       // one name not a chunk tag
  EXPECT_FALSE(EntityScorer({"O", "B-"}).applies());                   // no type
  EXPECT_FALSE(EntityScorer({"O", "B", "I"}).applies());
  EXPECT_FALSE(EntityScorer({"O", "X-PER"}).applies());
  EXPECT_FALSE(EntityScorer({"O"}).applies());  // no entity type at all
  EXPECT_FALSE(EntityScorer(std::vector<std::string>{}).applies());
  EXPECT_FALSE(EntityScorer({"O", ""}).applies());
  EntityScorer pos({"NOUN", "VERB"});
  const std::vector<int32_t> seq{0, 1};
  expect_error([&] { pos.add(seq, seq); }, {"not IOB chunk tags", "NOUN, VERB"});
}

TEST(EntityScorer, RejectsBadInput) {
  EntityScorer scorer({"O", "B-PER", "I-PER"});
  const std::vector<int32_t> ok{0, 1, 2}, high{0, 3, 1}, negative{-1, 0, 0}, short_seq{0, 1};
  expect_error([&] { scorer.add(high, ok); }, {"predicted label 3", "word 1", "3 labels"});
  expect_error([&] { scorer.add(ok, negative); }, {"gold label -1", "word 0"});
  expect_error([&] { scorer.add(ok, short_seq); }, {"3 predicted labels for 2 gold"});
  EXPECT_EQ(scorer.counts().gold, 0);
  expect_error([&] { scorer.from_flat(std::vector<double>(4)); }, {"flat array of 4"});
  expect_error([&] { scorer.from_flat(std::vector<double>{1.0, 1.0, 2.0}); }, {"2 correct"});
  expect_error([&] { scorer.from_flat(std::vector<double>{1.5, 1.0, 0.0}); }, {"not a count"});
  EntityScorer other({"O", "B-LOC", "I-LOC"});
  expect_error([&] { scorer.merge(other); }, {"other labels"});
}

TEST(EntityScorer, FlatMergeOfTwoHalvesEqualsOneScorer) {
  const nlohmann::json ref = reference();
  int checked = 0;
  for (const nlohmann::json& c : ref["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto labels = c["labels"].get<std::vector<std::string>>();
    const auto gold = c["gold"].get<Sequences>(), pred = c["pred"].get<Sequences>();
    const size_t n = gold.size(), half = n / 2;
    const EntityScorer whole = score(labels, pred, gold, 0, n);
    EntityScorer r0 = score(labels, pred, gold, 0, half);
    const EntityScorer r1 = score(labels, pred, gold, half, n);
    // An all-reduce: element-wise sum of the flat arrays.
    std::vector<double> sum = r0.to_flat();
    const std::vector<double> f1 = r1.to_flat();
    ASSERT_EQ(sum.size(), EntityScorer::flat_size());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += f1[i];
    EntityScorer reduced(labels);
    reduced.from_flat(sum);
    r0.merge(r1);
    for (const EntityScorer* s : {&reduced, &r0}) {
      EXPECT_EQ(s->to_flat(), whole.to_flat());
      EXPECT_EQ(s->counts().f1(), whole.counts().f1());
      EXPECT_NEAR(s->counts().f1(), c["f1"].get<double>(), 1e-12);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 13);
}

}  // namespace
}  // namespace ptune::train
