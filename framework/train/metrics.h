// Evaluation metrics: accuracy, macro-F1 as sklearn's
// f1_score(average="macro", zero_division=0), mean loss.
//
// Macro-F1 averages over the classes present in the labels or the
// predictions (sklearn's unique_labels); a class absent from both is not
// averaged in. Per class F1 = 2·tp / (2·tp + fp + fn).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ptune::train {

double accuracy(std::span<const int32_t> predictions, std::span<const int32_t> labels);
double macro_f1(std::span<const int32_t> predictions, std::span<const int32_t> labels);

// Counts and sums only, so that per-rank accumulators merge by adding
// their flat arrays (one all-reduce of to_flat(), then from_flat()).
// Classes are 0..num_classes-1; an index outside is an error.
class MetricAccumulator {
 public:
  explicit MetricAccumulator(int64_t num_classes);

  void add(std::span<const int32_t> predictions, std::span<const int32_t> labels);
  // loss_sum = Σ per-example (or per-token) losses over `count` of them.
  void add_loss(double loss_sum, double count);
  void merge(const MetricAccumulator& other);
  void reset();

  int64_t num_classes() const { return num_classes_; }
  int64_t count() const { return count_; }  // predictions seen
  double accuracy() const;                  // 0 when nothing was seen
  double macro_f1() const;                  // 0 when nothing was seen
  double mean_loss() const;                 // NaN when no loss was added
  double loss_count() const { return loss_count_; }

  // [count, correct, loss_sum, loss_count, true_count[C], pred_count[C], tp[C]]
  size_t flat_size() const { return 4 + 3 * size_t(num_classes_); }
  std::vector<double> to_flat() const;
  void from_flat(std::span<const double> flat);

 private:
  int64_t num_classes_;
  int64_t count_ = 0, correct_ = 0;
  double loss_sum_ = 0.0, loss_count_ = 0.0;
  std::vector<int64_t> true_count_, pred_count_, tp_;  // (C)
};

}  // namespace ptune::train
