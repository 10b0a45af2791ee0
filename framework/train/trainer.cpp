#include "framework/train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "framework/dist/communicator.h"
#include "framework/dist/sharded_weights.h"
#include "framework/io/json_file.h"
#include "framework/train/clip.h"
#include "framework/train/metrics.h"

namespace ptune::train {

namespace fs = std::filesystem;

namespace {

model::HeadBatch head_batch(const data::Batch& b) {
  model::HeadBatch h;
  h.attention_mask = b.attention_mask;
  h.labels = b.labels;
  h.mask_positions = b.mask_positions;
  h.lm_labels = b.lm_labels;
  h.tags = b.tags;
  return h;
}

// Targets the loss counts in these examples, so that the loss of an
// optimizer step is normalised by the step's (global) count, not per
// micro-batch: accumulation then trains exactly what one large batch would.
int64_t count_targets(const data::Dataset& d, const std::vector<int64_t>& indices) {
  int64_t n = 0;
  for (int64_t i : indices) {
    const data::Example& e = d[i];
    if (d.task() == model::TaskKind::kCausalLm) {
      // Position t predicts t + 1: the first label never counts.
      for (size_t t = 1; t < e.lm_labels.size(); ++t) n += e.lm_labels[t] != data::kIgnoreIndex;
    } else if (d.task() == model::TaskKind::kTokenClassification) {
      n += std::count_if(e.tags.begin(), e.tags.end(), [](int32_t y) { return y >= 0; });
    } else {
      n += e.label >= 0;
    }
  }
  return n;
}

// Where the prompt gradients and parameters are reduced and broadcast.
dist::Communicator* tensor_comm(const Distributed& d) { return d.tensor_comm ? d.tensor_comm : d.comm; }

int world_of(const Distributed& d) { return d.comm ? d.comm->size() : 1; }
int rank_of(const Distributed& d) { return d.comm ? d.comm->rank() : 0; }

// A rank whose slice of a global batch is empty still has to take part in
// the sharded model's all-gathers: it runs the first example with its loss
// and gradient weighted 0 (which leaves the gradient exactly as it was).
std::vector<int64_t> stand_in(const std::vector<int64_t>& indices, const Distributed& d) {
  if (!indices.empty() || !d.shard) return indices;
  return {0};
}

// Bytes and seconds of every communicator the step uses, each counted
// once: the world's, the tensors' (NCCL on GPUs) and, under shard: node,
// the node's that the gathers run on.
dist::CommStats comm_totals(const Distributed& d) {
  dist::CommStats s;
  std::vector<const dist::Communicator*> seen;
  const dist::Communicator* used[] = {d.comm, tensor_comm(d), d.shard ? &d.shard->communicator() : nullptr};
  for (const dist::Communicator* c : used) {
    if (!c || std::find(seen.begin(), seen.end(), c) != seen.end()) continue;
    seen.push_back(c);
    s.all_gather_bytes += c->stats().all_gather_bytes;
    s.all_reduce_bytes += c->stats().all_reduce_bytes;
    s.broadcast_bytes += c->stats().broadcast_bytes;
    s.seconds += c->stats().seconds;
  }
  return s;
}

int64_t num_classes(const data::Dataset& d) {
  int64_t k = 0;
  for (int64_t i = 0; i < d.size(); ++i) k = std::max<int64_t>(k, d[i].label + 1);
  return k;
}

}  // namespace

nlohmann::json EvalResult::to_json() const {
  nlohmann::json j = {{"loss", loss}, {"examples", examples}};
  if (!predictions.empty() || !tag_predictions.empty()) {
    j["accuracy"] = accuracy;
    j["macro_f1"] = macro_f1;
  }
  if (!tag_predictions.empty()) j["tokens"] = tokens;
  if (entities) {
    j["precision"] = precision;
    j["recall"] = recall;
    j["f1"] = f1;
    nlohmann::json per_type = nlohmann::json::object();
    for (const EntityTypeScores& t : entity_types)
      per_type[t.type] = {{"precision", t.precision}, {"recall", t.recall}, {"f1", t.f1}, {"number", t.number}};
    j["entities"] = per_type;
  }
  return j;
}

double EvalResult::metric(const std::string& name) const {
  if (name == "accuracy") return accuracy;
  if (name == "macro_f1") return macro_f1;
  if (name == "f1") {
    PTUNE_CHECK(entities, "metric 'f1' (entity-level) needs a token-classification task whose labels are IOB tags "
                          "(O, B-X, I-X, …)");
    return f1;
  }
  if (name == "loss") return -loss;
  PTUNE_FAIL("unknown metric '{}' (accuracy, macro_f1, f1, loss)", name);
}

namespace {

// Position of each example's first tagged token in a flat table of all the
// dataset's tagged tokens (and the table's size, last).
std::vector<int64_t> tag_offsets(const data::Dataset& d) {
  std::vector<int64_t> offsets(size_t(d.size()) + 1, 0);
  for (int64_t i = 0; i < d.size(); ++i)
    offsets[size_t(i) + 1] = offsets[size_t(i)] + int64_t(d[i].tag_words.size());
  return offsets;
}

}  // namespace

EvalResult evaluate(peft::PromptModel& prompt, model::TaskHead& head, const data::Dataset& dataset, int64_t batch_size,
                    Arena& arena, const Distributed& dist) {
  const bool tagged = dataset.task() == model::TaskKind::kTokenClassification;
  const bool classes = dataset.task() != model::TaskKind::kCausalLm && !tagged;
  MetricAccumulator metrics(classes ? std::max<int64_t>(num_classes(dataset), 1)
                                    : tagged ? int64_t(dataset.labels().size()) : 1);
  EntityScorer entities(tagged ? dataset.labels() : std::vector<std::string>{});
  EvalResult result;
  Rng unused(0);
  Arena host(Device::cpu());  // collated batches (the compute arena may be a GPU's)
  Arena& batch_arena = arena.device().is_cpu() ? arena : host;
  const data::Sampler sampler = data::Sampler::sequential(dataset.size(), batch_size, rank_of(dist), world_of(dist));
  data::Batch batch;
  std::vector<int64_t> examples;  // dataset index of each prediction this rank makes
  std::vector<int32_t> predictions, labels, scored, gold;  // reused per batch
  for (const std::vector<int64_t>& slice : sampler.epoch(0)) {
    const std::vector<int64_t> indices = stand_in(slice, dist);
    if (indices.empty()) continue;
    const bool real = !slice.empty();
    if (dist.shard) dist.shard->begin_micro_batch(false);
    data::collate(dataset, indices, batch, batch_arena);
    const std::vector<int32_t>& rows = head.select(head_batch(batch));
    Tensor hidden =
        prompt.forward(batch.ids, batch.type_ids, batch.attention_mask, arena, Mode::kInference, unused, rows);
    const model::HeadOutput out = head.forward(hidden, arena, Mode::kInference, unused);
    if (dist.shard) dist.shard->end_micro_batch();
    if (!real) {
      arena.reset();
      host.reset();
      continue;
    }
    metrics.add_loss(out.loss_sum, double(out.count));
    if ((classes || tagged) && out.scores.defined()) {
      const int64_t K = out.scores.size(1);
      const Tensor scores = out.scores.device().is_cpu() ? out.scores : out.scores.to(Device::cpu());
      auto argmax = [&](int64_t row) {
        const float* s = scores.data<float>() + row * K;
        return int32_t(std::max_element(s, s + K) - s);
      };
      // Metrics count the predictions that have a label (predict reads
      // records without one: data::kUnlabeled).
      auto add_labelled = [&](std::span<const int32_t> p, std::span<const int32_t> y) {
        scored.clear();
        gold.clear();
        for (size_t k = 0; k < y.size(); ++k)
          if (y[k] != data::kUnlabeled) {
            scored.push_back(p[k]);
            gold.push_back(y[k]);
          }
        metrics.add(scored, gold);
        // seqeval scores whole sentences: only fully tagged ones.
        if (tagged && entities.applies() && gold.size() == y.size()) entities.add(scored, gold);
      };
      if (classes) {
        predictions.clear();
        labels.clear();
        for (int64_t b = 0; b < int64_t(indices.size()); ++b) {
          predictions.push_back(argmax(b));
          labels.push_back(batch.labels.data<int32_t>()[b]);
          const float* s = scores.data<float>() + b * K;
          result.scores.emplace_back(s, s + K);
        }
        add_labelled(predictions, labels);
        result.predictions.insert(result.predictions.end(), predictions.begin(), predictions.end());
      } else {
        // scores rows: the batch's tagged tokens in (b, t) order.
        int64_t row = 0;
        for (int64_t i : indices) {
          const data::Example& ex = dataset[i];
          predictions.clear();
          labels.clear();
          for (int32_t y : ex.tags)
            if (y != data::kIgnoreIndex) {
              predictions.push_back(argmax(row++));
              labels.push_back(y);
            }
          add_labelled(predictions, labels);
          result.tag_predictions.push_back(predictions);
        }
      }
      examples.insert(examples.end(), slice.begin(), slice.end());
    } else if (tagged) {  // nothing tagged in this batch
      for (size_t b = 0; b < slice.size(); ++b) result.tag_predictions.emplace_back();
      examples.insert(examples.end(), slice.begin(), slice.end());
    }
    arena.reset();
    host.reset();
  }
  if (dist.comm && dist.comm->size() > 1) {
    std::vector<double> flat = metrics.to_flat();
    const std::vector<double> entity_flat = entities.to_flat();
    flat.insert(flat.end(), entity_flat.begin(), entity_flat.end());
    dist.comm->all_reduce(std::span<double>(flat));
    metrics.from_flat(std::span<const double>(flat).first(metrics.flat_size()));
    entities.from_flat(std::span<const double>(flat).subspan(metrics.flat_size(), entities.flat_size()));
    // Every rank's predictions (and scores), in dataset order: each fills
    // the rows of its examples in a zeroed table and the sum over ranks is
    // the whole table (class indices and f32 scores are exact in doubles).
    if (classes) {
      // The score width (the head's classes): a rank without examples has none.
      int64_t K = result.scores.empty() ? 0 : int64_t(result.scores.front().size());
      dist.comm->all_reduce(std::span<int64_t>(&K, 1), dist::ReduceOp::kMax);
      const int64_t n = dataset.size(), W = 1 + K;
      std::vector<double> table(size_t(n * W), 0.0);
      for (size_t i = 0; i < examples.size(); ++i) {
        double* row = table.data() + examples[i] * W;
        row[0] = result.predictions[i];
        std::copy(result.scores[i].begin(), result.scores[i].end(), row + 1);
      }
      dist.comm->all_reduce(std::span<double>(table));
      result.predictions.assign(size_t(n), 0);
      result.scores.assign(size_t(n), std::vector<float>(size_t(K)));
      for (int64_t i = 0; i < n; ++i) {
        const double* row = table.data() + i * W;
        result.predictions[size_t(i)] = int32_t(row[0]);
        std::copy(row + 1, row + W, result.scores[size_t(i)].begin());
      }
    }
    if (tagged) {
      const std::vector<int64_t> offsets = tag_offsets(dataset);
      std::vector<double> table(size_t(offsets.back()), 0.0);
      for (size_t i = 0; i < examples.size(); ++i)
        std::copy(result.tag_predictions[i].begin(), result.tag_predictions[i].end(),
                  table.begin() + offsets[size_t(examples[i])]);
      dist.comm->all_reduce(std::span<double>(table));
      result.tag_predictions.assign(size_t(dataset.size()), {});
      for (int64_t i = 0; i < dataset.size(); ++i)
        result.tag_predictions[size_t(i)].assign(table.begin() + offsets[size_t(i)],
                                                 table.begin() + offsets[size_t(i) + 1]);
    }
  }
  result.loss = metrics.mean_loss();
  result.examples = dataset.size();
  if (classes || tagged) {
    result.accuracy = metrics.accuracy();
    result.macro_f1 = metrics.macro_f1();
  }
  if (tagged) {
    result.tokens = metrics.count();
    result.entities = entities.applies();
    if (result.entities) {
      result.precision = entities.counts().precision();
      result.recall = entities.counts().recall();
      result.f1 = entities.counts().f1();
      // As seqeval's classification_report: the types found in the labels or the predictions.
      for (const std::string& type : entities.types()) {
        const EntityCounts& c = entities.counts(type);
        if (c.gold > 0 || c.predicted > 0)
          result.entity_types.push_back({type, c.precision(), c.recall(), c.f1(), c.gold});
      }
    }
  }
  return result;
}

Trainer::Trainer(const TrainOptions& options, peft::PromptModel& prompt, model::TaskHead& head, ParameterSet& params,
                 const data::Dataset& train, data::Sampler sampler, const data::Dataset* eval, RunLog& log,
                 std::function<void(const std::string&)> save_adapter)
    : options_(options),
      prompt_(prompt),
      head_(head),
      params_(params),
      train_(train),
      eval_(eval),
      log_(log),
      save_adapter_(std::move(save_adapter)),
      sampler_(std::move(sampler)),
      optimizer_(options.optimizer, params),
      schedule_(LrSchedule::from_options(options, 1)),
      rng_(options.seed),
      arena_(prompt.model().device()),
      batch_arena_(Device::cpu()) {
  PTUNE_CHECK(train.size() > 0, "{}: the training set is empty", train.origin());
  const int64_t batches = sampler_.batches_per_epoch();
  steps_per_epoch_ = (batches + options.grad_accum - 1) / options.grad_accum;
  total_steps_ = options.max_steps > 0 ? options.max_steps : options.epochs * steps_per_epoch_;
  schedule_ = LrSchedule::from_options(options, total_steps_);
  state_.rng_seed = options.seed;
}

std::string Trainer::path(const std::string& name) const { return (fs::path(options_.output_dir) / name).string(); }

double Trainer::step(const std::vector<std::vector<int64_t>>& micro_batches, int64_t& tokens) {
  // The loss is normalised by the global count of targets (all ranks, all
  // micro-batches), so the summed gradients are those of one large batch.
  int64_t count = 0;
  for (const auto& indices : micro_batches) count += count_targets(train_, indices);
  if (dist_.comm) dist_.comm->all_reduce(std::span<int64_t>(&count, 1));
  PTUNE_CHECK(count > 0, "step {}: no example in the batch has a label", state_.step);
  const float scale = 1.0f / float(count);
  double loss_sum = 0.0;
  data::Batch batch;
  for (const auto& slice : micro_batches) {
    const std::vector<int64_t> indices = stand_in(slice, dist_);
    if (indices.empty()) continue;
    const bool real = !slice.empty();
    if (dist_.shard) dist_.shard->begin_micro_batch(true);
    data::collate(train_, indices, batch, batch_arena_);
    if (real) tokens += batch.tokens;
    const std::vector<int32_t>& rows = head_.select(head_batch(batch));
    Tensor hidden = prompt_.forward(batch.ids, batch.type_ids, batch.attention_mask, arena_, Mode::kTrain, rng_, rows);
    const model::HeadOutput out = head_.forward(hidden, arena_, Mode::kTrain, rng_);
    if (real) loss_sum += out.loss_sum;
    Tensor dhidden = arena_.zeros(hidden.shape(), hidden.dtype());
    head_.backward(dhidden, real ? scale : 0.0f, arena_);
    prompt_.backward(dhidden, arena_);
    if (dist_.shard) dist_.shard->end_micro_batch();
    arena_.reset();
    batch_arena_.reset();
  }
  if (dist_.comm) {
    // One all-reduce of the flat gradient buffer per optimizer step.
    dist::Communicator& tc = *tensor_comm(dist_);
    const int64_t before = tc.stats().all_reduce_bytes;
    tc.all_reduce(std::span<float>(params_.grads().data<float>(), size_t(params_.numel())));
    last_grad_reduce_bytes_ = tc.stats().all_reduce_bytes - before;
    dist_.comm->all_reduce(std::span<double>(&loss_sum, 1));
  }
  return loss_sum / double(count);
}

void Trainer::set_distributed(Distributed dist) { dist_ = std::move(dist); }

bool Trainer::rank0() const { return rank_of(dist_) == 0; }

bool Trainer::run() {
  if (rank0()) fs::create_directories(options_.output_dir);
  const int world = world_of(dist_);
  // Rank 0's initial parameters are everyone's.
  if (dist_.comm)
    tensor_comm(dist_)->broadcast(std::span<float>(params_.values().data<float>(), size_t(params_.numel())));
  if (fs::exists(path("checkpoint-last") + "/trainer_state.json")) {
    // The data position counts global micro-batches (each rank reads its
    // slice of every one), so it means the same examples on any number of
    // ranks that share the global micro-batch, micro_batch × ranks: 2 × 4
    // may resume as 1 × 8. Another global micro-batch is refused.
    const std::string world_file = path("checkpoint-last") + "/world.json";
    const nlohmann::json saved = fs::exists(world_file) ? io::read_json_file(world_file) : nlohmann::json::object();
    const int64_t saved_world = saved.value("world_size", int64_t(1));
    // Checkpoints from before micro_batch was recorded resume on their own world size only.
    const int64_t saved_micro = saved.value("micro_batch", saved_world == world ? options_.micro_batch : int64_t(0));
    const int64_t global = saved_world * saved_micro;
    PTUNE_CHECK(global == world * options_.micro_batch,
                "{} was written by a {}-rank job with train.micro_batch {} (a global micro-batch of {}) and this job "
                "has {} rank{} with train.micro_batch {}: resume with micro_batch × ranks = {}{}, or start a fresh "
                "train.output_dir",
                path("checkpoint-last"), saved_world, saved_micro, global, world, world == 1 ? "" : "s",
                options_.micro_batch, global,
                global % world == 0 ? fmt::format(" (train.micro_batch={} on {} ranks)", global / world, world) : "");
    state_ = load_checkpoint(path("checkpoint-last"), params_, optimizer_);
    rng_ = Rng(state_.rng_seed, state_.rng_offset);
    log_.message(fmt::format("resumed from {} at step {}", path("checkpoint-last"), state_.step));
  }
  std::vector<std::vector<int64_t>> order = sampler_.epoch(state_.epoch);
  auto last_log = std::chrono::steady_clock::now();
  int64_t tokens_since_log = 0;
  double loss_since_log = 0.0;
  int64_t steps_since_log = 0;
  double step_seconds = 0.0;
  int64_t steps_run = 0;

  while (state_.step < total_steps_) {
    if (dist_.before_step) dist_.before_step(state_.step + 1);
    // Pre-emption: every rank learns whether any rank was signalled, so all
    // save the same checkpoint at the same step and none waits in a
    // collective for a rank that left.
    if (dist_.stop_requested) {
      int64_t stop = dist_.stop_requested() ? 1 : 0;
      if (dist_.comm) dist_.comm->all_reduce(std::span<int64_t>(&stop, 1), dist::ReduceOp::kMax);
      if (stop) {
        save_last();
        log_.message(fmt::format("stopped by a signal at step {}: {} holds the state to resume from", state_.step,
                                 path("checkpoint-last")));
        write_dist_report(step_seconds, steps_run);
        return false;
      }
    }
    const auto step_start = std::chrono::steady_clock::now();
    const dist::CommStats before = comm_totals(dist_);
    if (state_.epoch_position >= int64_t(order.size())) {
      ++state_.epoch;
      state_.epoch_position = 0;
      order = sampler_.epoch(state_.epoch);
    }
    const int64_t end = std::min<int64_t>(state_.epoch_position + options_.grad_accum, int64_t(order.size()));
    const std::vector<std::vector<int64_t>> micro(order.begin() + state_.epoch_position, order.begin() + end);
    int64_t tokens = 0;
    const double loss = step(micro, tokens);
    const double norm = options_.max_grad_norm > 0 ? clip_grad_norm(params_, options_.max_grad_norm)
                                                   : grad_norm(params_);
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      PTUNE_FAIL("the loss became {} at step {} (gradient norm {}): stopping; the last good checkpoint is {}",
                 loss, state_.step + 1, norm, path("checkpoint-last"));
    }
    const double lr = schedule_.lr_at(state_.step);
    optimizer_.step(params_, lr);
    params_.zero_grad();
    step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    ++steps_run;
    if (dist_.comm) {
      const dist::CommStats after = comm_totals(dist_);
      last_gather_bytes_ = after.all_gather_bytes - before.all_gather_bytes;
      last_reduce_bytes_ = after.all_reduce_bytes - before.all_reduce_bytes;
      comm_seconds_ += after.seconds - before.seconds;
    }
    ++state_.step;
    state_.epoch_position = end;
    state_.rng_offset = rng_.offset();
    losses_.push_back(loss);

    tokens_since_log += tokens;
    loss_since_log += loss;
    ++steps_since_log;
    if (state_.step % options_.log_every == 0 || state_.step == total_steps_) {
      const auto now = std::chrono::steady_clock::now();
      const double seconds = std::chrono::duration<double>(now - last_log).count();
      log_.train_step(state_.step, total_steps_, loss_since_log / double(steps_since_log), lr, norm,
                      double(tokens_since_log) / std::max(seconds, 1e-9));
      last_log = now;
      tokens_since_log = 0;
      loss_since_log = 0.0;
      steps_since_log = 0;
    }
    const bool epoch_end = state_.epoch_position >= int64_t(order.size());
    const bool eval_now = options_.eval_every > 0 ? state_.step % options_.eval_every == 0 : epoch_end;
    if (eval_now || state_.step == total_steps_) evaluate_and_save();
    else if (options_.save_every > 0 && state_.step % options_.save_every == 0) save_last();
  }
  if (rank0()) save_adapter_(path("adapter"));
  if (dist_.comm) dist_.comm->barrier();
  log_.message(fmt::format("adapter written to {}", path("adapter")));
  write_dist_report(step_seconds, steps_run);
  return true;
}

void Trainer::write_dist_report(double step_seconds, int64_t steps) {
  if (!dist_.comm) return;
  // Peak frozen-weight memory is per rank: report the largest.
  int64_t peak = dist_.shard ? dist_.shard->peak_frozen_bytes() : 0;
  dist_.comm->all_reduce(std::span<int64_t>(&peak, 1), dist::ReduceOp::kMax);
  // The step's activations and scratch (the compute arena), largest rank.
  int64_t activations = int64_t(arena_.peak_bytes());
  dist_.comm->all_reduce(std::span<int64_t>(&activations, 1), dist::ReduceOp::kMax);
  nlohmann::json r = {{"world_size", dist_.comm->size()},
                      {"shard", dist_.shard_mode},
                      {"steps", steps},
                      {"step_seconds", steps ? step_seconds / double(steps) : 0.0},
                      {"comm_seconds_per_step", steps ? comm_seconds_ / double(steps) : 0.0},
                      {"all_gather_bytes_per_step", last_gather_bytes_},
                      {"grad_all_reduce_bytes_per_step", last_grad_reduce_bytes_},
                      {"all_reduce_bytes_per_step", last_reduce_bytes_},
                      {"trainable_parameters", params_.numel()},
                      {"activation_peak_bytes_per_rank", activations}};
  if (dist_.shard) {
    r["keep_for_backward"] = dist_.shard->keep_for_backward();
    r["frozen_bytes_unsharded"] = dist_.shard->full_bytes();
    r["peak_frozen_bytes_per_rank"] = peak;
    std::vector<int64_t> units;
    for (size_t u = 0; u < dist_.shard->num_units(); ++u) units.push_back(dist_.shard->unit_bytes(u));
    r["unit_bytes"] = units;
  }
  dist_report_ = r;
  if (rank0()) io::write_json_file(path("dist.json"), r);
}

void Trainer::evaluate_and_save() {
  if (eval_) {
    const EvalResult r = evaluate(prompt_, head_, *eval_, options_.eval_batch, arena_, dist_);
    nlohmann::json metrics = r.to_json();
    const double value = r.metric(options_.metric_for_best);
    if (std::isnan(state_.best_metric) || value > state_.best_metric) {
      state_.best_metric = value;
      state_.best_step = state_.step;
      if (rank0()) save_adapter_(path("best"));
      metrics["best"] = true;
    }
    log_.eval(state_.step, metrics);
  }
  save_last();
}

// Rank 0 writes (every rank holds the same state); the others wait so that
// nobody reads or resumes a half-written checkpoint.
void Trainer::save_last() {
  if (rank0()) {
    save_checkpoint(path("checkpoint-last"), params_, optimizer_, state_);
    io::write_json_file(path("checkpoint-last") + "/world.json",
                        {{"world_size", world_of(dist_)}, {"micro_batch", options_.micro_batch}});
  }
  if (dist_.comm) dist_.comm->barrier();
}

}  // namespace ptune::train
