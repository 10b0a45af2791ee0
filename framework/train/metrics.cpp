#include "framework/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string_view>
#include <utility>

#include "framework/core/error.h"

namespace ptune::train {

namespace {

int32_t max_class(std::span<const int32_t> a, std::span<const int32_t> b) {
  int32_t m = -1;
  for (int32_t x : a) m = std::max(m, x);
  for (int32_t x : b) m = std::max(m, x);
  return m;
}

// A chunk of seqeval's get_entities: (type, first word, last word).
struct Entity {
  int32_t type;
  int64_t first, last;
};

// seqeval's end_of_chunk: a chunk ended between the previous word and this one.
bool end_of_chunk(char prev_tag, char tag, int32_t prev_type, int32_t type) {
  if (prev_tag == 'E' || prev_tag == 'S') return true;
  if ((prev_tag == 'B' || prev_tag == 'I') && (tag == 'B' || tag == 'S' || tag == 'O')) return true;
  return prev_tag != 'O' && prev_tag != '.' && prev_type != type;
}

// seqeval's start_of_chunk: a chunk started between the previous word and this one.
bool start_of_chunk(char prev_tag, char tag, int32_t prev_type, int32_t type) {
  if (tag == 'B' || tag == 'S') return true;
  if ((prev_tag == 'E' || prev_tag == 'S' || prev_tag == 'O') && (tag == 'E' || tag == 'I')) return true;
  return tag != 'O' && tag != '.' && prev_type != type;
}

// seqeval's get_entities over one sequence, with its trailing "O" (tag 'O',
// type `o_type`). Chunks come out in increasing order of their last word.
std::vector<Entity> get_entities(std::span<const int32_t> seq, const std::vector<char>& tags,
                                 const std::vector<int32_t>& types, int32_t o_type) {
  std::vector<Entity> chunks;
  // seqeval starts from prev_type '', which no label's type equals.
  char prev_tag = 'O';
  int32_t prev_type = -1;
  int64_t begin = 0;
  const int64_t n = int64_t(seq.size());
  for (int64_t i = 0; i <= n; ++i) {
    const char tag = i < n ? tags[size_t(seq[size_t(i)])] : 'O';
    const int32_t type = i < n ? types[size_t(seq[size_t(i)])] : o_type;
    if (end_of_chunk(prev_tag, tag, prev_type, type)) chunks.push_back({prev_type, begin, i - 1});
    if (start_of_chunk(prev_tag, tag, prev_type, type)) begin = i;
    prev_tag = tag;
    prev_type = type;
  }
  return chunks;
}

void check_labels(std::span<const int32_t> seq, size_t num_labels, const char* which) {
  for (size_t i = 0; i < seq.size(); ++i)
    PTUNE_CHECK(seq[i] >= 0 && size_t(seq[i]) < num_labels,
                "entity scorer: {} label {} (word {}) outside the {} labels", which, seq[i], i, num_labels);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i == 0 ? "" : ", ") + names[i];
  return out;
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

double EntityCounts::precision() const { return predicted == 0 ? 0.0 : double(correct) / double(predicted); }

double EntityCounts::recall() const { return gold == 0 ? 0.0 : double(correct) / double(gold); }

double EntityCounts::f1() const {
  // From P and R in seqeval's order of operations, so that it matches to the last bit.
  const double p = precision(), r = recall();
  const double denom = p + r;
  return 2.0 * p * r / (denom == 0.0 ? 1.0 : denom);
}

EntityScorer::EntityScorer(std::vector<std::string> label_names) : label_names_(std::move(label_names)) {
  // "_" first: the type of "O" and of the trailing "O" seqeval appends.
  std::map<std::string, int32_t> type_ids{{"_", 0}};
  bool all_chunk_tags = true, any_entity = false;
  for (const std::string& name : label_names_) {
    const std::string_view rest = name.empty() ? std::string_view() : std::string_view(name).substr(1);
    const size_t dash = rest.find('-');
    const std::string_view type = dash == std::string_view::npos ? rest : rest.substr(dash + 1);
    tag_.push_back(name.empty() ? '\0' : name[0]);
    const auto [it, added] = type_ids.try_emplace(std::string(type.empty() ? "_" : type), int32_t(type_ids.size()));
    type_.push_back(it->second);

    const bool prefixed =
        name.size() > 2 && name[1] == '-' && std::string_view("BIES").find(name[0]) != std::string_view::npos;
    all_chunk_tags = all_chunk_tags && (name == "O" || prefixed);
    any_entity = any_entity || prefixed;
  }
  applies_ = all_chunk_tags && any_entity;

  slot_.assign(type_ids.size(), -1);
  if (applies_) {
    for (size_t i = 0; i < label_names_.size(); ++i) {
      if (label_names_[i] == "O" || slot_[size_t(type_[i])] >= 0) continue;
      slot_[size_t(type_[i])] = int32_t(types_.size());
      types_.push_back(label_names_[i].substr(2));
    }
  }
  type_counts_.resize(types_.size());
}

void EntityScorer::reset() {
  counts_ = {};
  type_counts_.assign(types_.size(), {});
}

const EntityCounts& EntityScorer::counts(const std::string& type) const {
  const auto it = std::find(types_.begin(), types_.end(), type);
  PTUNE_CHECK(it != types_.end(), "entity scorer: no entity type '{}' (types: {})", type, join(types_));
  return type_counts_[size_t(it - types_.begin())];
}

void EntityScorer::add(std::span<const int32_t> predicted, std::span<const int32_t> gold) {
  PTUNE_CHECK(applies_, "entity scorer: the labels are not IOB chunk tags (B-, I-, E-, S- + a type, or O): {}",
              join(label_names_));
  PTUNE_CHECK(predicted.size() == gold.size(), "entity scorer: {} predicted labels for {} gold labels",
              predicted.size(), gold.size());
  check_labels(predicted, label_names_.size(), "predicted");
  check_labels(gold, label_names_.size(), "gold");
  const std::vector<Entity> p = get_entities(predicted, tag_, type_, 0);
  const std::vector<Entity> g = get_entities(gold, tag_, type_, 0);
  // A chunk ends after a B-, I-, E- or S- word, so its type is an entity
  // label's and has a slot.
  for (const Entity& e : p) ++type_counts_[size_t(slot_[size_t(e.type)])].predicted;
  for (const Entity& e : g) ++type_counts_[size_t(slot_[size_t(e.type)])].gold;
  // Both in increasing order of last word, at most one chunk ending per word.
  int64_t correct = 0;
  for (size_t i = 0, j = 0; i < p.size() && j < g.size();) {
    if (p[i].last < g[j].last) {
      ++i;
    } else if (g[j].last < p[i].last) {
      ++j;
    } else {
      if (p[i].first == g[j].first && p[i].type == g[j].type) {
        ++type_counts_[size_t(slot_[size_t(p[i].type)])].correct;
        ++correct;
      }
      ++i;
      ++j;
    }
  }
  counts_.gold += int64_t(g.size());
  counts_.predicted += int64_t(p.size());
  counts_.correct += correct;
}

void EntityScorer::merge(const EntityScorer& other) {
  PTUNE_CHECK(other.label_names_ == label_names_, "entity scorer: merging a scorer over other labels ({} vs {})",
              join(other.label_names_), join(label_names_));
  const auto add = [](EntityCounts& to, const EntityCounts& from) {
    to.gold += from.gold;
    to.predicted += from.predicted;
    to.correct += from.correct;
  };
  add(counts_, other.counts_);
  for (size_t t = 0; t < type_counts_.size(); ++t) add(type_counts_[t], other.type_counts_[t]);
}

std::vector<double> EntityScorer::to_flat() const {
  std::vector<double> flat;
  flat.reserve(flat_size());
  const auto write = [&](const EntityCounts& c) {
    flat.insert(flat.end(), {double(c.gold), double(c.predicted), double(c.correct)});
  };
  write(counts_);
  for (const EntityCounts& c : type_counts_) write(c);
  return flat;
}

void EntityScorer::from_flat(std::span<const double> flat) {
  PTUNE_CHECK(flat.size() == flat_size(), "entity scorer: flat array of {} values, expected {} for {} entity types",
              flat.size(), flat_size(), types_.size());
  for (double x : flat)
    PTUNE_CHECK(x >= 0.0 && x == std::floor(x), "entity scorer: flat count {} is not a count", x);
  // Counts travel as doubles: exact up to 2^53.
  const auto read = [&](size_t at, const std::string& what) {
    const EntityCounts c{int64_t(flat[at]), int64_t(flat[at + 1]), int64_t(flat[at + 2])};
    PTUNE_CHECK(c.correct <= c.gold && c.correct <= c.predicted,
                "entity scorer: {} correct {}entities out of {} gold and {} predicted", c.correct, what, c.gold,
                c.predicted);
    return c;
  };
  const EntityCounts total = read(0, "");
  std::vector<EntityCounts> per_type;
  EntityCounts sum;
  for (size_t t = 0; t < types_.size(); ++t) {
    per_type.push_back(read(3 * (1 + t), types_[t] + " "));
    sum.gold += per_type.back().gold;
    sum.predicted += per_type.back().predicted;
    sum.correct += per_type.back().correct;
  }
  PTUNE_CHECK(sum.gold == total.gold && sum.predicted == total.predicted && sum.correct == total.correct,
              "entity scorer: per-type counts sum to {} gold, {} predicted, {} correct, not the overall {}, {}, {}",
              sum.gold, sum.predicted, sum.correct, total.gold, total.predicted, total.correct);
  counts_ = total;
  type_counts_ = std::move(per_type);
}

}  // namespace ptune::train
