// Learning-rate schedules against transformers' (through torch's LambdaLR)
// and metrics against sklearn; references in fixtures/optimizer/reference.json.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "framework/io/json_file.h"
#include "framework/train/metrics.h"
#include "framework/train/schedule.h"
#include "train_test_util.h"

namespace ptune::train {
namespace {

nlohmann::json reference() { return io::read_json_file(testing::fixture("reference.json")); }

Schedule schedule_kind(const std::string& name) {
  if (name == "constant") return Schedule::kConstant;
  if (name == "linear") return Schedule::kLinear;
  if (name == "cosine") return Schedule::kCosine;
  PTUNE_FAIL("unknown schedule '{}' in the fixture", name);
}

TEST(LrSchedule, MatchesTransformers) {
  int tables = 0;
  const nlohmann::json ref = reference();
  for (const nlohmann::json& t : ref["schedules"]) {
    const std::string kind = t["kind"];
    const int64_t warmup = t["warmup_steps"], total = t["total_steps"];
    SCOPED_TRACE(fmt::format("{} warmup {} total {}", kind, warmup, total));
    const LrSchedule sched(schedule_kind(kind), t["base_lr"].get<double>(), warmup, total);
    const auto lrs = t["lr"].get<std::vector<double>>();
    ASSERT_GT(lrs.size(), size_t(total));
    for (size_t k = 0; k < lrs.size(); ++k)
      EXPECT_NEAR(sched.lr_at(int64_t(k)), lrs[k], 1e-15 * std::abs(lrs[k])) << "step " << k;
    ++tables;
  }
  EXPECT_EQ(tables, 18);
}

TEST(LrSchedule, FromOptionsWidensTheRecipeValues) {
  TrainOptions options;
  options.optimizer.lr = 5e-3f;
  options.schedule = Schedule::kLinear;
  options.warmup_ratio = 0.1f;
  const LrSchedule sched = LrSchedule::from_options(options, 100);
  EXPECT_EQ(sched.base_lr(), 5e-3);      // not double(5e-3f)
  EXPECT_EQ(sched.warmup_steps(), 10);   // ceil(100 · 0.1f as a double) would be 11
  EXPECT_EQ(sched.lr_at(5), 5e-3 * (5.0 / 10.0));
  options.warmup_steps = 3;  // steps win over the ratio
  EXPECT_EQ(LrSchedule::from_options(options, 100).warmup_steps(), 3);
}

TEST(LrSchedule, WarmupStepsAsTrainingArguments) {
  int checked = 0;
  const nlohmann::json ref = reference();
  for (const nlohmann::json& c : ref["warmup"]) {
    const double w = c["warmup"];
    const int64_t total = c["total_steps"], expected = c["expected"];
    // transformers 5 takes one `warmup_steps`: >= 1 is a count, < 1 a ratio.
    const int64_t got = w >= 1 ? resolve_warmup_steps(int64_t(w), 0.0f, total)
                               : resolve_warmup_steps(0, float(w), total);
    EXPECT_EQ(got, expected) << "warmup " << w << " total " << total;
    ++checked;
  }
  EXPECT_EQ(checked, 11);
  testing::expect_error([] { resolve_warmup_steps(0, 1.5f, 10); }, {"warmup_ratio"});
  testing::expect_error([] { LrSchedule(Schedule::kLinear, 1e-3, 0, 0); }, {"training step"});
}

TEST(Metrics, MatchSklearn) {
  int checked = 0;
  const nlohmann::json ref = reference();
  for (const nlohmann::json& c : ref["metrics"]) {
    const auto y_true = c["y_true"].get<std::vector<int32_t>>();
    const auto y_pred = c["y_pred"].get<std::vector<int32_t>>();
    SCOPED_TRACE(c.dump());
    EXPECT_NEAR(accuracy(y_pred, y_true), c["accuracy"].get<double>(), 1e-15);
    EXPECT_NEAR(macro_f1(y_pred, y_true), c["macro_f1"].get<double>(), 1e-12);
    MetricAccumulator acc(c["num_classes"].get<int64_t>());
    acc.add(y_pred, y_true);
    EXPECT_NEAR(acc.accuracy(), c["accuracy"].get<double>(), 1e-15);
    EXPECT_NEAR(acc.macro_f1(), c["macro_f1"].get<double>(), 1e-12);
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

TEST(Metrics, HandComputedMacroF1) {
  // Classes 0, 1 present; class 2 in neither. Class 0: tp 1, fp 1, fn 0 → F1 2/3;
  // class 1: tp 0, fp 0, fn 1 → F1 0 (precision 0/0 counts as 0). Macro: 1/3.
  const std::vector<int32_t> y_true{0, 1}, y_pred{0, 0};
  MetricAccumulator acc(3);
  acc.add(y_pred, y_true);
  EXPECT_DOUBLE_EQ(acc.macro_f1(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(acc.accuracy(), 0.5);
  EXPECT_EQ(MetricAccumulator(2).macro_f1(), 0.0);
  EXPECT_TRUE(std::isnan(MetricAccumulator(2).mean_loss()));
}

TEST(Metrics, MergeAndFlatRoundTripEqualOneAccumulator) {
  const std::vector<int32_t> y_true{5, 0, 4, 4, 1, 2, 3, 5, 0, 1, 2, 2};
  const std::vector<int32_t> y_pred{5, 0, 4, 1, 1, 2, 3, 0, 0, 2, 2, 4};
  MetricAccumulator whole(6), r0(6), r1(6);
  whole.add(y_pred, y_true);
  whole.add_loss(7.5, 12);
  r0.add(std::span(y_pred).first(5), std::span(y_true).first(5));
  r0.add_loss(3.0, 5);
  r1.add(std::span(y_pred).subspan(5), std::span(y_true).subspan(5));
  r1.add_loss(4.5, 7);
  // An all-reduce: element-wise sum of the flat arrays.
  std::vector<double> sum = r0.to_flat();
  const std::vector<double> f1 = r1.to_flat();
  ASSERT_EQ(sum.size(), r0.flat_size());
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += f1[i];
  MetricAccumulator reduced(6);
  reduced.from_flat(sum);
  r0.merge(r1);
  for (const MetricAccumulator* m : {&reduced, &r0}) {
    EXPECT_EQ(m->to_flat(), whole.to_flat());
    EXPECT_EQ(m->macro_f1(), whole.macro_f1());
    EXPECT_DOUBLE_EQ(m->mean_loss(), 7.5 / 12);
    EXPECT_EQ(m->count(), 12);
  }
  reduced.reset();
  EXPECT_EQ(reduced.count(), 0);
  testing::expect_error([&] { reduced.from_flat(std::vector<double>(3)); }, {"flat array of 3"});
  const std::vector<int32_t> bad{6};
  testing::expect_error([&] { reduced.add(bad, bad); }, {"label 6", "6 classes"});
}

}  // namespace
}  // namespace ptune::train
