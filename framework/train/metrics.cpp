#include "framework/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/core/error.h"

namespace ptune::train {

namespace {

int32_t max_class(std::span<const int32_t> a, std::span<const int32_t> b) {
  int32_t m = -1;
  for (int32_t x : a) m = std::max(m, x);
  for (int32_t x : b) m = std::max(m, x);
  return m;
}

}  // namespace

double accuracy(std::span<const int32_t> predictions, std::span<const int32_t> labels) {
  MetricAccumulator acc(max_class(predictions, labels) + 1);
  acc.add(predictions, labels);
  return acc.accuracy();
}

double macro_f1(std::span<const int32_t> predictions, std::span<const int32_t> labels) {
  MetricAccumulator acc(max_class(predictions, labels) + 1);
  acc.add(predictions, labels);
  return acc.macro_f1();
}

MetricAccumulator::MetricAccumulator(int64_t num_classes)
    : num_classes_(num_classes),
      true_count_(size_t(std::max<int64_t>(num_classes, 0))),
      pred_count_(true_count_.size()),
      tp_(true_count_.size()) {
  PTUNE_CHECK(num_classes >= 0, "metrics over {} classes", num_classes);
}

void MetricAccumulator::add(std::span<const int32_t> predictions, std::span<const int32_t> labels) {
  PTUNE_CHECK(predictions.size() == labels.size(), "metrics: {} predictions for {} labels", predictions.size(),
              labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const int32_t p = predictions[i], y = labels[i];
    PTUNE_CHECK(y >= 0 && y < num_classes_, "metrics: label {} (example {}) outside the {} classes", y, i,
                num_classes_);
    PTUNE_CHECK(p >= 0 && p < num_classes_, "metrics: prediction {} (example {}) outside the {} classes", p, i,
                num_classes_);
    ++true_count_[size_t(y)];
    ++pred_count_[size_t(p)];
    if (p == y) {
      ++tp_[size_t(y)];
      ++correct_;
    }
    ++count_;
  }
}

void MetricAccumulator::add_loss(double loss_sum, double count) {
  PTUNE_CHECK(count >= 0.0, "metrics: loss over a negative count {}", count);
  loss_sum_ += loss_sum;
  loss_count_ += count;
}

void MetricAccumulator::merge(const MetricAccumulator& other) {
  PTUNE_CHECK(other.num_classes_ == num_classes_, "metrics: merging {} classes into {}", other.num_classes_,
              num_classes_);
  count_ += other.count_;
  correct_ += other.correct_;
  loss_sum_ += other.loss_sum_;
  loss_count_ += other.loss_count_;
  for (size_t c = 0; c < tp_.size(); ++c) {
    true_count_[c] += other.true_count_[c];
    pred_count_[c] += other.pred_count_[c];
    tp_[c] += other.tp_[c];
  }
}

void MetricAccumulator::reset() { *this = MetricAccumulator(num_classes_); }

double MetricAccumulator::accuracy() const { return count_ == 0 ? 0.0 : double(correct_) / double(count_); }

double MetricAccumulator::macro_f1() const {
  double sum = 0.0;
  int64_t present = 0;
  for (size_t c = 0; c < tp_.size(); ++c) {
    if (true_count_[c] == 0 && pred_count_[c] == 0) continue;
    // 2tp + fp + fn = true_count + pred_count > 0 for a present class.
    sum += 2.0 * double(tp_[c]) / double(true_count_[c] + pred_count_[c]);
    ++present;
  }
  return present == 0 ? 0.0 : sum / double(present);
}

double MetricAccumulator::mean_loss() const {
  return loss_count_ == 0.0 ? std::numeric_limits<double>::quiet_NaN() : loss_sum_ / loss_count_;
}

std::vector<double> MetricAccumulator::to_flat() const {
  std::vector<double> flat;
  flat.reserve(flat_size());
  flat = {double(count_), double(correct_), loss_sum_, loss_count_};
  for (int64_t x : true_count_) flat.push_back(double(x));
  for (int64_t x : pred_count_) flat.push_back(double(x));
  for (int64_t x : tp_) flat.push_back(double(x));
  return flat;
}

void MetricAccumulator::from_flat(std::span<const double> flat) {
  PTUNE_CHECK(flat.size() == flat_size(), "metrics: flat array of {} values, expected {} for {} classes",
              flat.size(), flat_size(), num_classes_);
  // Counts travel as doubles: exact up to 2^53.
  count_ = int64_t(flat[0]);
  correct_ = int64_t(flat[1]);
  loss_sum_ = flat[2];
  loss_count_ = flat[3];
  const size_t c = size_t(num_classes_);
  for (size_t i = 0; i < c; ++i) {
    true_count_[i] = int64_t(flat[4 + i]);
    pred_count_[i] = int64_t(flat[4 + c + i]);
    tp_[i] = int64_t(flat[4 + 2 * c + i]);
  }
}

}  // namespace ptune::train
