// Collation: right padding with the tokenizer's pad id, masks, labels, and
// no allocation in the steady state.
#include <gtest/gtest.h>

#include "framework/data/batch.h"
#include "framework/data/sampler.h"

namespace ptune::data {
namespace {

text::Tokenizer tokenizer(const std::string& name) {
  auto t = text::Tokenizer::from_file(std::string(PTUNE_FIXTURES) + "/tokenizers/" + name + "/tokenizer.json");
  t.set_truncation(std::nullopt);
  t.set_padding(std::nullopt);
  return t;
}

std::vector<Record> records(std::vector<std::pair<std::string, std::string>> rows) {
  std::vector<Record> rs;
  for (auto& [text, label] : rows) {
    Record r;
    r.line = int64_t(rs.size()) + 1;
    r.fields = {{"sentence", text}, {"label", label}};
    rs.push_back(std::move(r));
  }
  return rs;
}

TEST(Batch, PadsOnTheRightWithThePadId) {
  const text::Tokenizer tok = tokenizer("roberta");
  DataOptions o;
  o.text = "[P*2]{sentence} [MASK]";
  o.labels = {"0", "1"};
  const auto rs = records({{"a b c d e f", "1"}, {"a", "0"}, {"a b c", "1"}});
  const Dataset d = Dataset::from_records(rs, "mem", o, tok, {});
  Arena arena;
  Batch b;
  const std::vector<int64_t> idx{1, 0, 2};
  collate(d, idx, b, arena);
  const int64_t T = int64_t(d[0].ids.size());
  ASSERT_EQ(b.size(), 3);
  ASSERT_EQ(b.length(), T);
  EXPECT_EQ(b.ids.shape(), (Shape{3, T}));
  EXPECT_EQ(d.pad_id(), 1);  // RoBERTa's <pad>
  const int32_t* ids = b.ids.data<int32_t>();
  const int32_t* mask = b.attention_mask.data<int32_t>();
  int64_t tokens = 0;
  for (int64_t r = 0; r < 3; ++r) {
    const Example& ex = d[idx[size_t(r)]];
    for (int64_t t = 0; t < T; ++t) {
      const bool real = t < int64_t(ex.ids.size());
      EXPECT_EQ(ids[r * T + t], real ? ex.ids[size_t(t)] : 1);
      EXPECT_EQ(mask[r * T + t], real ? 1 : 0);
      EXPECT_EQ(b.type_ids.data<int32_t>()[r * T + t], real ? ex.type_ids[size_t(t)] : 0);
      tokens += real;
    }
    EXPECT_EQ(b.labels.data<int32_t>()[r], ex.label);
    EXPECT_EQ(b.mask_positions.data<int32_t>()[r], ex.mask_position);
    EXPECT_EQ(ids[r * T + 1], -1);  // virtual tokens keep their negative ids
  }
  EXPECT_EQ(b.labels.data<int32_t>()[0], 0);
  EXPECT_EQ(b.tokens, tokens);
  EXPECT_EQ(b.label_tokens, 3);
  EXPECT_FALSE(b.lm_labels.defined());
}

TEST(Batch, CausalLmLabelsAndSteadyStateWithoutAllocation) {
  const text::Tokenizer tok = tokenizer("gpt2");
  DataOptions o;
  o.text = "{sentence} =";
  o.answer_field = "label";
  TemplateContext ctx;
  ctx.task = model::TaskKind::kCausalLm;
  const auto rs = records({{"the movie", "good"}, {"the long long movie was", "bad"}, {"a", "the"}});
  const Dataset d = Dataset::from_records(rs, "mem", o, tok, ctx);
  Arena arena;
  Batch b;
  const std::vector<int64_t> idx{0, 1, 2};
  collate(d, idx, b, arena);
  const int64_t T = b.length();
  int64_t label_tokens = 0;
  for (int64_t r = 0; r < 3; ++r) {
    const Example& ex = d[r];
    for (int64_t t = 0; t < T; ++t) {
      const int32_t want = t < int64_t(ex.ids.size()) ? ex.lm_labels[size_t(t)] : kIgnoreIndex;
      EXPECT_EQ(b.lm_labels.data<int32_t>()[r * T + t], want);
      label_tokens += t >= 1 && want != kIgnoreIndex;
      if (t >= int64_t(ex.ids.size())) EXPECT_EQ(b.ids.data<int32_t>()[r * T + t], 0);  // no pad token: 0, masked
    }
  }
  EXPECT_EQ(b.label_tokens, label_tokens);
  EXPECT_GT(label_tokens, 3);  // answers plus <|endoftext|>

  // Steady state: after the first epochs, reset + collate allocates nothing.
  const Sampler s(d.size(), d.lengths(), 2, 3, true);
  for (int64_t e = 0; e < 3; ++e) {
    for (const auto& batch : s.epoch(e)) {
      arena.reset();
      collate(d, batch, b, arena);
    }
  }
  const size_t allocations = arena.system_allocations();
  for (int64_t e = 3; e < 10; ++e) {
    for (const auto& batch : s.epoch(e)) {
      arena.reset();
      collate(d, batch, b, arena);
    }
  }
  EXPECT_EQ(arena.system_allocations(), allocations);

  // An empty slice (a rank past the end of the last global batch).
  arena.reset();
  collate(d, std::span<const int64_t>(), b, arena);
  EXPECT_EQ(b.size(), 0);
  EXPECT_EQ(b.tokens, 0);
}

}  // namespace
}  // namespace ptune::data
