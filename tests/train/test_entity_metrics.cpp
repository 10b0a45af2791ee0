// Entity-level NER scores (EntityScorer) against seqeval's default mode;
// references in fixtures/metrics/seqeval.json (gen_seqeval_fixtures.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "expect_error.h"
#include "framework/io/json_file.h"
#include "framework/train/metrics.h"
#include "framework/train/trainer.h"

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

// seqeval's classification_report rows: the types that occur in the gold or
// predicted entities; a type of the label set that occurs in neither counts
// nothing.
TEST(EntityScorer, PerTypeMatchesSeqevalClassificationReport) {
  int checked = 0, rows = 0;
  const nlohmann::json ref = reference();
  for (const nlohmann::json& c : ref["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto labels = c["labels"].get<std::vector<std::string>>();
    const auto gold = c["gold"].get<Sequences>(), pred = c["pred"].get<Sequences>();
    const EntityScorer scorer = score(labels, pred, gold, 0, gold.size());
    const nlohmann::json& per_type = c["per_type"];
    for (const auto& [type, row] : per_type.items())
      EXPECT_NE(std::find(scorer.types().begin(), scorer.types().end(), type), scorer.types().end()) << type;
    for (const std::string& type : scorer.types()) {
      SCOPED_TRACE(type);
      const EntityCounts& counts = scorer.counts(type);
      if (!per_type.contains(type)) {
        EXPECT_EQ(counts.gold, 0);
        EXPECT_EQ(counts.predicted, 0);
        continue;
      }
      const nlohmann::json& row = per_type[type];
      EXPECT_EQ(counts.gold, row["support"].get<int64_t>());
      EXPECT_EQ(counts.predicted, row["nb_pred"].get<int64_t>());
      EXPECT_EQ(counts.correct, row["nb_correct"].get<int64_t>());
      EXPECT_NEAR(counts.precision(), row["precision"].get<double>(), 1e-12);
      EXPECT_NEAR(counts.recall(), row["recall"].get<double>(), 1e-12);
      EXPECT_NEAR(counts.f1(), row["f1"].get<double>(), 1e-12);
      ++rows;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 13);
  EXPECT_GE(rows, 30);
}

TEST(EntityScorer, TypesInFirstAppearanceOrder) {
  using Names = std::vector<std::string>;
  EXPECT_EQ(EntityScorer({"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}).types(), (Names{"PER", "LOC"}));
  EXPECT_EQ(EntityScorer({"B-geo", "I-geo-loc", "B-geo-loc", "O", "I-geo", "B-_", "I-_", "S-geo", "I-loc"}).types(),
            (Names{"geo", "geo-loc", "_", "loc"}));
  EXPECT_EQ(EntityScorer({"I-ORG", "O", "E-MISC", "S-ORG"}).types(), (Names{"ORG", "MISC"}));
  EXPECT_TRUE(EntityScorer({"NOUN", "VERB"}).types().empty());  // does not apply
  EXPECT_EQ(EntityScorer({"NOUN", "VERB"}).flat_size(), 3u);
  EXPECT_EQ(EntityScorer({"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}).flat_size(), 9u);
  const EntityScorer scorer({"O", "B-PER", "I-PER"});
  expect_error([&] { scorer.counts("LOC"); }, {"no entity type 'LOC'", "PER"});
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
  // PER: 1 gold, 2 predicted, 1 correct; LOC: 1 gold, none predicted.
  const EntityCounts& per = scorer.counts("PER");
  EXPECT_EQ(per.gold, 1);
  EXPECT_EQ(per.predicted, 2);
  EXPECT_EQ(per.correct, 1);
  EXPECT_EQ(per.precision(), 0.5);
  EXPECT_EQ(per.recall(), 1.0);
  EXPECT_DOUBLE_EQ(per.f1(), 2.0 / 3.0);
  const EntityCounts& loc = scorer.counts("LOC");
  EXPECT_EQ(loc.gold, 1);
  EXPECT_EQ(loc.predicted, 0);
  EXPECT_EQ(loc.correct, 0);
  EXPECT_EQ(loc.f1(), 0.0);
  EXPECT_EQ(scorer.to_flat(), (std::vector<double>{2, 2, 1, 1, 2, 1, 1, 0, 0}));
  scorer.add({}, {});  // an empty sequence counts nothing
  EXPECT_EQ(scorer.counts().gold, 2);
  scorer.reset();
  EXPECT_EQ(scorer.counts().predicted, 0);
  EXPECT_EQ(scorer.counts("PER").predicted, 0);
  EXPECT_EQ(scorer.to_flat(), std::vector<double>(9, 0.0));
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
  // [gold, predicted, correct] overall, then for PER.
  expect_error([&] { scorer.from_flat(std::vector<double>(3)); }, {"flat array of 3", "expected 6", "1 entity type"});
  expect_error([&] { scorer.from_flat(std::vector<double>{1, 1, 2, 1, 1, 2}); }, {"2 correct entities"});
  expect_error([&] { scorer.from_flat(std::vector<double>{1, 1, 1, 1, 1, 2}); }, {"2 correct PER entities"});
  expect_error([&] { scorer.from_flat(std::vector<double>{1.5, 1, 0, 1.5, 1, 0}); }, {"not a count"});
  expect_error([&] { scorer.from_flat(std::vector<double>{2, 1, 0, 1, 1, 0}); },
               {"per-type counts sum to 1 gold", "overall 2"});
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
    ASSERT_EQ(sum.size(), 3 * (1 + whole.types().size()));
    ASSERT_EQ(sum.size(), whole.flat_size());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += f1[i];
    EntityScorer reduced(labels);
    reduced.from_flat(sum);
    r0.merge(r1);
    for (const EntityScorer* s : {&reduced, &r0}) {
      EXPECT_EQ(s->to_flat(), whole.to_flat());
      EXPECT_EQ(s->counts().f1(), whole.counts().f1());
      EXPECT_NEAR(s->counts().f1(), c["f1"].get<double>(), 1e-12);
      for (const std::string& type : whole.types()) {
        SCOPED_TRACE(type);
        EXPECT_EQ(s->counts(type).gold, whole.counts(type).gold);
        EXPECT_EQ(s->counts(type).predicted, whole.counts(type).predicted);
        EXPECT_EQ(s->counts(type).correct, whole.counts(type).correct);
        if (c["per_type"].contains(type))
          EXPECT_NEAR(s->counts(type).f1(), c["per_type"][type]["f1"].get<double>(), 1e-12);
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 13);
}

TEST(EntityScorer, EvalResultWritesPerTypeScores) {
  EvalResult r;
  r.tag_predictions = {{1, 2, 0, 1}};
  EXPECT_FALSE(r.to_json().contains("entities"));  // the scorer does not apply
  r.entities = true;
  r.f1 = 0.5;
  r.entity_types = {{"PER", 0.5, 1.0, 2.0 / 3.0, 1}, {"LOC", 0.0, 0.0, 0.0, 1}};
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["f1"], 0.5);
  ASSERT_EQ(j["entities"].size(), 2u);
  EXPECT_EQ(j["entities"]["PER"],
            (nlohmann::json{{"precision", 0.5}, {"recall", 1.0}, {"f1", 2.0 / 3.0}, {"number", 1}}));
  EXPECT_EQ(j["entities"]["LOC"]["number"], 1);
  EXPECT_EQ(r.metric("f1"), 0.5);
}

}  // namespace
}  // namespace ptune::train
