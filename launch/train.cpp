// `ptune train | eval | predict | export`: the jobs a recipe drives.
#include <fmt/format.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "framework/data/sampler.h"
#include "framework/dist/communicator.h"
#include "framework/dist/mpi_communicator.h"
#include "framework/dist/nccl_communicator.h"
#include "framework/dist/sharded_weights.h"
#include "framework/dist/signals.h"
#include "framework/io/json_file.h"
#include "framework/peft/adapter.h"
#include "framework/train/optimizer.h"
#include "framework/train/run_log.h"
#include "framework/train/train_state.h"
#include "framework/train/trainer.h"
#include "job.h"

namespace ptune::launch {

namespace {

namespace fs = std::filesystem;

struct RecipeArgs {
  std::string recipe;
  std::vector<std::string> overrides;  // section.key=value

  recipe::Recipe load() const { return recipe::load_recipe(recipe, overrides); }
};

void add_recipe_args(CLI::App* cmd, RecipeArgs& a) {
  cmd->add_option("recipe", a.recipe, "YAML recipe")->required()->check(CLI::ExistingFile);
  cmd->add_option("overrides", a.overrides, "section.key=value overrides of the recipe");
}

peft::AdapterInfo adapter_info(const Job& job) { return {job.recipe.model.path, job.recipe.task.kind}; }

// A job whose prompt and head come from a saved adapter (eval, predict).
std::unique_ptr<Job> job_from_adapter(recipe::Recipe r, const std::string& adapter_dir, Datasets datasets,
                                      const model::ShardLayout& layout = {}) {
  const peft::Adapter adapter = peft::load_adapter(adapter_dir);
  r.method = peft::inference_config(adapter, r.method);
  auto job = build_job(r, datasets, layout);
  job->prompt->encoder().embedding().copy_from(adapter.prompt_embeddings);
  for (const auto& [name, value] : adapter.head) job->params.value(job->params.index(name)).copy_from(value);
  return job;
}

int env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : int(fallback);
}

// The ranks of the job: MPI's world under mpirun/srun, one process otherwise.
std::unique_ptr<dist::Communicator> world_communicator() {
  if (dist::launch_env().under_launcher) return dist::make_mpi_communicator();
  return std::make_unique<dist::SingleCommunicator>();
}

// The communicator for GPU tensors across the ranks of `mpi` (the world's
// or the node's), this rank on GPU local_rank.
std::unique_ptr<dist::Communicator> device_communicator(dist::Communicator& mpi) {
#ifdef PTUNE_HAS_NCCL
  return dist::make_nccl_communicator(mpi, dist::launch_env().local_rank);
#else
  (void)mpi;
  PTUNE_FAIL("GPU runs under mpirun need NCCL, which this ptune was built without (install libnccl-dev, rebuild)");
#endif
}

std::string shard_name(recipe::ShardMode m) {
  switch (m) {
    case recipe::ShardMode::kNone: return "none";
    case recipe::ShardMode::kWorld: return "world";
    case recipe::ShardMode::kNode: return "node";
  }
  return "none";
}

// The ranks a command runs on and the frozen model's sharding over them
// (train, eval). open() before the job is built: MPI's world (one process
// without a launcher), the node's ranks for shard: node, and this rank's
// part of the model to load. shard() after: the NCCL communicators GPU
// tensors travel over (wherever MPI carries the job, one rank included)
// and the ShardedWeights over the world's or the node's ranks (on GPUs an
// NCCL communicator bootstrapped through MPI's node communicator: the
// gathers stay on the node's links).
struct Ranks {
  recipe::ShardMode mode = recipe::ShardMode::kNone;
  std::unique_ptr<dist::Communicator> comm, node_comm, tensor_comm, node_tensor_comm;
  std::unique_ptr<dist::ShardedWeights> shard;
  model::ShardLayout layout;

  static Ranks open(const recipe::Recipe& r) {
    Ranks k;
    k.mode = r.model.shard;
    k.comm = world_communicator();
    if (k.mode == recipe::ShardMode::kNode && dist::launch_env().under_launcher)
      k.node_comm = dist::make_mpi_node_communicator();
    const dist::Communicator& over = k.node_comm ? *k.node_comm : *k.comm;
    if (k.mode != recipe::ShardMode::kNone) k.layout = {over.rank(), over.size()};
    return k;
  }

  void shard_model(const recipe::Recipe& r, Job& job) {
    const Device device = job.model->device();
    if (!comm->supports(device)) tensor_comm = device_communicator(*comm);
    if (node_comm && !node_comm->supports(device)) node_tensor_comm = device_communicator(*node_comm);
    if (mode == recipe::ShardMode::kNone) return;
    dist::Communicator& over = node_comm ? (node_tensor_comm ? *node_tensor_comm : *node_comm)
                                         : (tensor_comm ? *tensor_comm : *comm);
    shard = std::make_unique<dist::ShardedWeights>(*job.model, over, r.model.shard_keep_for_backward);
    // The verbalizer and causal-LM heads of a tied model decode with the
    // word embeddings after the transformer ran.
    const bool decodes = r.task.kind == model::TaskKind::kVerbalizer || r.task.kind == model::TaskKind::kCausalLm;
    if (decodes && !job.model->weights().has(model::Component::kLmHead))
      shard->keep_embeddings();
  }

  train::Distributed distributed() const {
    train::Distributed d;
    d.comm = comm.get();
    d.tensor_comm = tensor_comm.get();
    d.shard = shard.get();
    d.shard_mode = shard_name(mode);
    return d;
  }
};

// Token classification drops the tags of words past data.max_length (as
// transformers does): say so rather than let them vanish from the metrics.
std::string truncation_note(const data::Dataset& d, int64_t max_length) {
  return fmt::format("note: {}: {} of {} sentences are longer than data.max_length {}; their last words get no tag "
                     "(raise data.max_length to keep them)",
                     d.origin(), d.truncated(), d.size(), max_length);
}

int train(const RecipeArgs& args, bool print_config) {
  const recipe::Recipe r = args.load();
  if (print_config) {
    fmt::print("{}", recipe::dump_recipe(r));
    return 0;
  }
  Ranks ranks = Ranks::open(r);
  const dist::Communicator* comm = ranks.comm.get();
  const bool rank0 = comm->rank() == 0;
  auto job = build_job(r, Datasets::kTrainAndEval, ranks.layout);
  ranks.shard_model(r, *job);

  const train::TrainOptions& t = r.train;
  // Only rank 0 prints progress and writes files.
  if (rank0) {
    fs::create_directories(t.output_dir);
    std::ofstream out(t.output_dir + "/recipe.yaml");
    out << recipe::dump_recipe(r);
  }
  train::RunLog log(rank0 ? t.output_dir + "/metrics.jsonl" : std::string(), !rank0);
  log.message(fmt::format("{}: {} train examples, {} eval, {} trainable parameters", r.model.path, job->train->size(),
                          job->eval ? job->eval->size() : 0, job->params.numel()));
  for (const data::Dataset* d : {&*job->train, job->eval ? &*job->eval : nullptr})
    if (d && d->truncated() > 0) log.message(truncation_note(*d, r.data.max_length));
  Arena adapter_arena(job->model->device());
  auto save = [&](const std::string& dir) {
    peft::save_adapter(dir, *job->prompt, job->params, adapter_info(*job), adapter_arena);
    adapter_arena.reset();
  };
  // Global batch = micro_batch × grad_accum × world: each rank reads its
  // slice of every global micro-batch.
  data::Sampler sampler(job->train->size(), job->train->lengths(), t.micro_batch, t.seed, r.data.bucket_by_length,
                        comm->rank(), comm->size());
  train::Trainer trainer(t, *job->prompt, *job->head, job->params, *job->train, std::move(sampler),
                         job->eval ? &*job->eval : nullptr, log, save);

  dist::StopSignals signals;
  train::Distributed d = ranks.distributed();
  d.stop_requested = [&signals] { return signals.requested(); };
  // Test hooks (docs/scaling.md): rank PTUNE_FAIL_RANK (default 0) throws
  // before step PTUNE_FAIL_AT_STEP, or raises SIGTERM in itself (through the
  // handler a Slurm pre-emption reaches) before step PTUNE_SIGTERM_AT_STEP:
  // a signal at a known step, where one sent from outside races the run.
  const int fail_at = env_int("PTUNE_FAIL_AT_STEP", 0), sigterm_at = env_int("PTUNE_SIGTERM_AT_STEP", 0);
  if ((fail_at > 0 || sigterm_at > 0) && comm->rank() == env_int("PTUNE_FAIL_RANK", 0))
    d.before_step = [fail_at, sigterm_at](int64_t step) {
      PTUNE_CHECK(step != fail_at, "injected failure before step {} (PTUNE_FAIL_AT_STEP)", step);
      if (step == sigterm_at) std::raise(SIGTERM);
    };
  trainer.set_distributed(std::move(d));
  if (comm->size() > 1)
    log.message(fmt::format("{} ranks ({}), global batch {} = micro_batch {} × grad_accum {} × {} ranks, shard {}",
                            comm->size(), dist::launch_env().launcher, t.micro_batch * t.grad_accum * comm->size(),
                            t.micro_batch, t.grad_accum, comm->size(), shard_name(r.model.shard)));
  if (!trainer.run() && rank0)
    fmt::print(stderr, "ptune: stopped by signal {}; resume with the same command\n", signals.signal());
  return 0;
}

int evaluate(const RecipeArgs& args, const std::string& adapter, const std::string& data) {
  recipe::Recipe r = args.load();
  if (!data.empty()) r.data.eval = data;
  PTUNE_CHECK(!r.data.eval.empty(), "nothing to evaluate: set data.eval or --data");
  // Under mpirun each rank evaluates its slice of the data, on its part of
  // a sharded model (model.shard), and the metrics are reduced.
  Ranks ranks = Ranks::open(r);
  auto job = job_from_adapter(r, adapter, Datasets::kEvalOnly, ranks.layout);
  ranks.shard_model(r, *job);
  Arena arena(job->model->device());
  const train::EvalResult result =
      train::evaluate(*job->prompt, *job->head, *job->eval, r.train.eval_batch, arena, ranks.distributed());
  if (ranks.comm->rank() == 0 && job->eval->truncated() > 0)
    fmt::print(stderr, "{}\n", truncation_note(*job->eval, r.data.max_length));
  if (ranks.comm->rank() == 0) fmt::print("{}\n", result.to_json().dump());
  return 0;
}

int predict(const RecipeArgs& args, const std::string& adapter, const std::string& input, const std::string& output) {
  recipe::Recipe r = args.load();
  PTUNE_CHECK(r.task.kind != model::TaskKind::kCausalLm,
              "predict covers classification, verbalizer and token-classification tasks (causal LM: ptune generate)");
  // As eval: each rank labels its slice; every rank ends with all the
  // predictions and rank 0 writes them.
  Ranks ranks = Ranks::open(r);
  auto job = job_from_adapter(r, adapter, Datasets::kNone, ranks.layout);
  ranks.shard_model(r, *job);
  job->context.labels_required = false;  // labels, where the input has them, only feed the metrics
  const data::Dataset d = job->load_dataset(input);
  Arena arena(job->model->device());
  const train::EvalResult result =
      train::evaluate(*job->prompt, *job->head, d, r.train.eval_batch, arena, ranks.distributed());
  if (ranks.comm->rank() != 0) return 0;
  if (d.truncated() > 0) fmt::print(stderr, "{}\n", truncation_note(d, r.data.max_length));
  std::ofstream out(output);
  PTUNE_CHECK(out.good(), "cannot write {}", output);
  for (int64_t i = 0; i < d.size(); ++i) {
    nlohmann::json line = {{"line", d[i].line}};
    if (r.task.kind == model::TaskKind::kTokenClassification) {
      // One tag per word, its first token's; null for a word that lost its
      // tokens to truncation.
      nlohmann::json tags(size_t(d[i].words), nullptr);
      const std::vector<int32_t>& p = result.tag_predictions[size_t(i)];
      for (size_t k = 0; k < p.size(); ++k) {
        nlohmann::json& tag = tags[size_t(d[i].tag_words[k])];
        if (tag.is_null()) tag = r.data.labels[size_t(p[k])];
      }
      line["tags"] = std::move(tags);
    } else {
      line["prediction"] = r.data.labels[size_t(result.predictions[size_t(i)])];
      line["scores"] = result.scores[size_t(i)];
    }
    out << line.dump() << "\n";
  }
  fmt::print("wrote {} predictions to {}\n", d.size(), output);
  return 0;
}

int export_adapter(const RecipeArgs& args, const std::string& checkpoint, const std::string& out) {
  const recipe::Recipe r = args.load();
  auto job = build_job(r, Datasets::kNone);
  train::AdamW optimizer(r.train.optimizer, job->params);
  train::load_checkpoint(checkpoint, job->params, optimizer);
  Arena arena(job->model->device());
  peft::save_adapter(out, *job->prompt, job->params, adapter_info(*job), arena);
  fmt::print("wrote the adapter of {} to {}\n", checkpoint, out);
  return 0;
}

}  // namespace

Command add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a prompt as a recipe says");
  auto args = std::make_shared<RecipeArgs>();
  auto print_config = std::make_shared<bool>(false);
  add_recipe_args(cmd, *args);
  cmd->add_flag("--print-config", *print_config, "print the resolved recipe and exit");
  return [cmd, args, print_config] { return cmd->parsed() ? train(*args, *print_config) : -1; };
}

Command add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate an adapter on a dataset");
  auto args = std::make_shared<RecipeArgs>();
  auto adapter = std::make_shared<std::string>(), data = std::make_shared<std::string>();
  add_recipe_args(cmd, *args);
  cmd->add_option("--adapter", *adapter, "adapter directory (PEFT format)")->required();
  cmd->add_option("--data", *data, "dataset (default: the recipe's data.eval)");
  return [cmd, args, adapter, data] { return cmd->parsed() ? evaluate(*args, *adapter, *data) : -1; };
}

Command add_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "Label a JSONL/CSV/TSV file with an adapter");
  auto args = std::make_shared<RecipeArgs>();
  auto adapter = std::make_shared<std::string>(), input = std::make_shared<std::string>(),
       output = std::make_shared<std::string>();
  add_recipe_args(cmd, *args);
  cmd->add_option("--adapter", *adapter, "adapter directory (PEFT format)")->required();
  cmd->add_option("--input", *input, "examples to label")->required();
  cmd->add_option("--output", *output, "predictions (JSONL)")->required();
  return [cmd, args, adapter, input, output] {
    return cmd->parsed() ? predict(*args, *adapter, *input, *output) : -1;
  };
}

Command add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Write a training checkpoint as a PEFT adapter");
  auto args = std::make_shared<RecipeArgs>();
  auto checkpoint = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  add_recipe_args(cmd, *args);
  cmd->add_option("--checkpoint", *checkpoint, "checkpoint directory (e.g. runs/x/checkpoint-last)")->required();
  cmd->add_option("--out", *out, "adapter directory to write")->required();
  return [cmd, args, checkpoint, out] { return cmd->parsed() ? export_adapter(*args, *checkpoint, *out) : -1; };
}

}  // namespace ptune::launch
