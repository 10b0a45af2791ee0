// Evaluation metrics: accuracy, macro-F1 as sklearn's
// f1_score(average="macro", zero_division=0), mean loss.
//
// Macro-F1 averages over the classes present in the labels or the
// predictions (sklearn's unique_labels); a class absent from both is not
// averaged in. Per class F1 = 2·tp / (2·tp + fp + fn).
#pragma once

#include <cstdint>
#include <span>
#include <string>
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

// Entity-level scores of IOB-tagged sequences, as seqeval's default mode
// (conlleval-compatible, not strict; prefix tags "B-PER") computes them with
// precision_score / recall_score / f1_score(average="micro"):
// seqeval.metrics.sequence_labeling.get_entities chunks the tags, an entity
// is (type, first word, last word), and a predicted entity is correct when
// the labels hold the same one. The chunking follows seqeval's
// end_of_chunk / start_of_chunk literally, ill-formed sequences included
// (an I- without a B- opens a chunk, a type change closes one).
//
// seqeval chunks a list of sequences by concatenating them with an "O"
// after each; that "O" closes any open chunk and a sequence's first tag
// never depends on what came before an "O", so chunking each sequence on
// its own and summing the counts gives the same numbers.
//
// Zero division as seqeval's default zero_division="warn" (which returns
// 0, after a warning): precision 0 when nothing is predicted, recall 0 when
// the labels hold no entity, F1 0 when precision + recall is 0.
struct EntityCounts {
  // Entities in the labels, in the predictions, and in both (same type, same span).
  int64_t gold = 0, predicted = 0, correct = 0;

  double precision() const;  // correct / predicted; 0 when predicted == 0
  double recall() const;     // correct / gold; 0 when gold == 0
  double f1() const;         // 2·P·R / (P + R), as seqeval computes it from P and R; 0 when P + R == 0
};

// Counts only, so that per-rank scorers merge by adding their flat arrays
// (one all-reduce of to_flat(), then from_flat()), as MetricAccumulator's.
// Counts are kept overall and per entity type, as seqeval's
// classification_report (default mode) reports them: per type, the
// entities of that type in the labels ("support"), in the predictions, and
// in both.
class EntityScorer {
 public:
  // label_names: the label set in class-index order, e.g.
  // {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}.
  explicit EntityScorer(std::vector<std::string> label_names);

  // True when the names are chunk tags: every name is "O" or a prefix B-,
  // I-, E- or S- (IOB1, IOB2, IOE, IOBES) followed by a non-empty type, and
  // at least one is not "O". A POS-like tag set is not; the trainer then
  // reports token accuracy only.
  bool applies() const { return applies_; }

  // One sequence: the predicted and gold class indices of its words, in
  // order. Same length; an index outside the label set, or a scorer that
  // does not apply(), is an error.
  void add(std::span<const int32_t> predicted, std::span<const int32_t> gold);
  void merge(const EntityScorer& other);
  void reset();

  const EntityCounts& counts() const { return counts_; }  // overall (micro)
  const std::vector<std::string>& label_names() const { return label_names_; }

  // The entity types, in the order they first appear in the label set
  // ({"O", "B-PER", "I-PER", "B-LOC", "I-LOC"}: PER, LOC); a type is all of
  // a name after its first '-' ("B-geo-loc": geo-loc). Empty when the
  // scorer does not apply().
  const std::vector<std::string>& types() const { return types_; }
  // The counts of one of types(); another name is an error.
  const EntityCounts& counts(const std::string& type) const;

  // [gold, predicted, correct, then gold, predicted, correct per type in types() order]
  size_t flat_size() const { return 3 * (1 + types_.size()); }
  std::vector<double> to_flat() const;
  void from_flat(std::span<const double> flat);

 private:
  std::vector<std::string> label_names_;
  // Per label, seqeval's split of a name: tag = its first character; type =
  // the rest after its first '-' (all the rest when it has none, "_" when
  // that is empty, as for "O"), as an index into the distinct types.
  std::vector<char> tag_;
  std::vector<int32_t> type_;
  bool applies_ = false;
  // Per distinct type (type_'s indices): its index in types_, or -1 for
  // the type of "O" when no entity label has it.
  std::vector<int32_t> slot_;
  std::vector<std::string> types_;
  EntityCounts counts_;
  std::vector<EntityCounts> type_counts_;  // (types_)
};

}  // namespace ptune::train
