#include "job.h"

#include "framework/core/rng.h"
#include "framework/core/stream.h"
#include "framework/dist/mpi_communicator.h"

namespace ptune::launch {

namespace {

// Where the recipe's model goes: model.device (GPU local_rank) in model.dtype.
model::LoadOptions placement(const recipe::ModelOptions& m, const model::ShardLayout& layout) {
  if (m.device == recipe::DeviceKind::kCpu) return {layout};
  const int gpus = cuda_device_count();
#ifdef PTUNE_CUDA
  PTUNE_CHECK(gpus > 0, "model.device is cuda, but no GPU is visible to this process (CUDA_VISIBLE_DEVICES?)");
#else
  PTUNE_CHECK(gpus > 0, "model.device is cuda, but this ptune was built without CUDA (cmake -DPTUNE_CUDA=ON)");
#endif
  // One process per GPU: local rank r of a node drives GPU r.
  const int local = dist::launch_env().local_rank;
  PTUNE_CHECK(local < gpus, "local rank {} has no GPU of its own ({} visible): start at most {} ranks per node",
              local, gpus, gpus);
  return {layout, Device::cuda(local), m.dtype == recipe::ModelDType::kF32 ? DType::kF32 : DType::kBF16};
}

}  // namespace

data::Dataset Job::load_dataset(const std::string& path) const {
  data::Dataset d = data::Dataset::load(path, recipe.data, *tokenizer, context);
  const int64_t P = recipe.method.num_virtual_tokens;
  if (recipe.method.placement == peft::Placement::kInput)
    PTUNE_CHECK(d.num_virtual_tokens() == P,
                "{}: the template places {} virtual tokens but method.num_virtual_tokens is {}", path,
                d.num_virtual_tokens(), P);
  else
    PTUNE_CHECK(d.num_virtual_tokens() == 0, "{}: [P] slots in the template need an input placement, not kv-prefix",
                path);
  return d;
}

std::unique_ptr<Job> build_job(const recipe::Recipe& recipe, Datasets datasets, const model::ShardLayout& layout) {
  auto job = std::make_unique<Job>();
  job->recipe = recipe;
  PTUNE_CHECK(!recipe.model.path.empty(), "model.path is not set");
  job->model = model::Transformer::load(recipe.model.path, placement(recipe.model, layout));
  job->model->set_recompute(recipe.model.gradient_checkpointing);
  job->tokenizer = std::make_unique<text::Tokenizer>(text::Tokenizer::from_directory(recipe.model.path));
  // tokenizer.json may carry its own truncation/padding (MiniLM's: 128);
  // transformers ignores them and so does ptune: data.max_length rules.
  job->tokenizer->set_truncation(std::nullopt);
  job->tokenizer->set_padding(std::nullopt);

  const peft::PromptConfig& method = recipe.method;
  job->context.task = recipe.task.kind;
  // Virtual tokens go first unless the template places them ([P] slots).
  const bool slots = recipe.data.text.find("[P") != std::string::npos ||
                     recipe.data.text_pair.find("[P") != std::string::npos;
  if (method.placement == peft::Placement::kInput && !slots) job->context.prepend = method.num_virtual_tokens;

  // Every position a sequence can take must exist in the model.
  const model::ModelSpec& spec = job->model->spec();
  const int64_t prefix = method.placement == peft::Placement::kKvPrefix ? method.num_virtual_tokens : 0;
  PTUNE_CHECK(spec.position_offset + prefix + recipe.data.max_length <= spec.max_positions,
              "data.max_length {}{} needs {} positions but {} has {}: lower data.max_length", recipe.data.max_length,
              prefix ? fmt::format(" after a {}-token prefix", prefix) : "", spec.position_offset + prefix +
              recipe.data.max_length, recipe.model.path, spec.max_positions);

  if (datasets == Datasets::kTrainAndEval) {
    PTUNE_CHECK(!recipe.data.train.empty(), "data.train is not set");
    job->train.emplace(job->load_dataset(recipe.data.train));
  }
  if (datasets != Datasets::kNone && !recipe.data.eval.empty()) job->eval.emplace(job->load_dataset(recipe.data.eval));

  job->prompt = std::make_unique<peft::PromptModel>(method, *job->model, job->params);
  std::vector<int32_t> verbalizer;
  if (recipe.task.kind == model::TaskKind::kVerbalizer)
    verbalizer = data::verbalizer_token_ids(recipe.data, *job->tokenizer);
  job->head = model::TaskHead::create(recipe.task, *job->model, int64_t(recipe.data.labels.size()), verbalizer,
                                      job->params);
  job->params.finalize();

  Rng rng(recipe.train.seed);
  std::vector<int32_t> text_ids;
  if (method.init == peft::PromptInit::kText) {
    for (uint32_t id : job->tokenizer->encode(method.init_text).ids) text_ids.push_back(int32_t(id));
  }
  job->prompt->init(rng, text_ids);
  job->head->init(rng);
  job->params.to(job->model->device());
  return job;
}

}  // namespace ptune::launch
