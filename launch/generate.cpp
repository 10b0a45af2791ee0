// `ptune generate`: continue text prompts with a decoder model (GPT-2,
// LLaMA family), optionally with a trained prompt (a PEFT adapter of any
// method), greedy or sampled, with a KV cache, on the CPU or a GPU.
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "framework/core/stream.h"
#include "framework/io/json_file.h"
#include "framework/model/generation.h"
#include "framework/model/transformer.h"
#include "framework/peft/adapter.h"
#include "framework/text/tokenizer.h"

namespace ptune::launch {

namespace {

struct GenerateOptions {
  std::string model, adapter, tokenizer;
  std::vector<std::string> prompts;
  int64_t max_new_tokens = 32;
  bool sample = false;
  float temperature = 1.0f, top_p = 1.0f;
  int64_t top_k = 0;
  uint64_t seed = 0;
  bool no_cache = false;
  std::string device = "cpu", dtype = "bf16";  // dtype: of the model on a GPU (the CPU computes in f32)
};

// config.json's eos_token_id (an integer or a list), when present.
std::vector<int32_t> eos_ids(const std::string& dir) {
  std::vector<int32_t> out;
  for (const char* file : {"/generation_config.json", "/config.json"}) {
    if (!std::filesystem::exists(dir + file)) continue;
    const nlohmann::json c = io::read_json_file(dir + file);
    if (!c.contains("eos_token_id") || c["eos_token_id"].is_null()) continue;
    if (c["eos_token_id"].is_array())
      for (const auto& v : c["eos_token_id"]) out.push_back(v.get<int32_t>());
    else
      out.push_back(c["eos_token_id"].get<int32_t>());
    break;
  }
  return out;
}

int run_generate(const GenerateOptions& o) {
  PTUNE_CHECK(o.device == "cpu" || o.device == "cuda", "generate: --device is cpu or cuda, not '{}'", o.device);
  PTUNE_CHECK(o.dtype == "bf16" || o.dtype == "f32", "generate: --dtype is bf16 or f32, not '{}'", o.dtype);
  PTUNE_CHECK(o.device == "cpu" || cuda_device_count() > 0,
              "generate --device cuda: no GPU visible (or a build without CUDA: cmake -DPTUNE_CUDA=ON)");
  model::LoadOptions where;
  if (o.device == "cuda") where = {{}, Device::cuda(0), o.dtype == "bf16" ? DType::kBF16 : DType::kF32};
  auto model = model::Transformer::load(o.model, where);
  const model::ModelSpec& spec = model->spec();
  const auto tokenizer = text::Tokenizer::from_file(o.tokenizer.empty() ? o.model + "/tokenizer.json" : o.tokenizer);

  model::GenerationPrompt prompt;
  model::KvPrefix prefix;
  if (!o.adapter.empty()) {
    const peft::Adapter a = peft::load_adapter(o.adapter);
    const Tensor& e = a.prompt_embeddings;  // (P, W)
    const int64_t KVW = spec.kv_heads * spec.head_dim;
    if (a.config.value("peft_type", "") == "PREFIX_TUNING") {
      PTUNE_CHECK(e.size(1) == spec.layers * 2 * KVW, "{}: prompt_embeddings width {} is not layers·2·{} = {}",
                  o.adapter, e.size(1), KVW, spec.layers * 2 * KVW);
      prefix = model::split_prefix_table(e, spec);
      prompt.prefix = &prefix;
    } else {
      PTUNE_CHECK(e.size(1) == spec.hidden, "{}: prompt_embeddings width {} is not the hidden size {}", o.adapter,
                  e.size(1), spec.hidden);
      prompt.input_rows = e;  // prompt tuning / P-Tuning: virtual tokens before the text
    }
  }

  model::GenerationOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.sample = o.sample;
  g.temperature = o.temperature;
  g.top_k = o.top_k;
  g.top_p = o.top_p;
  g.use_cache = !o.no_cache;
  g.eos_ids = eos_ids(o.model);
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& p : o.prompts) {
    const auto enc = tokenizer.encode(p);
    ids.emplace_back(enc.ids.begin(), enc.ids.end());
  }
  Rng rng(o.seed);
  const auto out = model::generate(*model, ids, prompt, g, rng);
  for (size_t i = 0; i < out.size(); ++i) {
    const std::vector<uint32_t> fresh(out[i].begin() + int64_t(ids[i].size()), out[i].end());
    nlohmann::json line = {{"prompt", o.prompts[i]}, {"ids", fresh}, {"text", tokenizer.decode(fresh)}};
    fmt::print("{}\n", line.dump());
  }
  return 0;
}

}  // namespace

Command add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Continue prompts with a decoder model (and a trained prompt)");
  auto o = std::make_shared<GenerateOptions>();
  cmd->add_option("--model", o->model, "model directory")->required();
  cmd->add_option("--adapter", o->adapter, "PEFT adapter directory (any prompt method)");
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json (default: the model's)");
  cmd->add_option("--prompt", o->prompts, "text to continue (repeatable: one sequence each)")->required();
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "tokens to add at most")->capture_default_str();
  cmd->add_flag("--sample", o->sample, "sample instead of greedy decoding");
  cmd->add_option("--temperature", o->temperature, "sampling temperature")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "keep the k most likely tokens (0: all)")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "nucleus: the most likely tokens with this mass")->capture_default_str();
  cmd->add_option("--seed", o->seed, "sampling seed")->capture_default_str();
  cmd->add_flag("--no-cache", o->no_cache, "recompute the whole sequence every step (no KV cache)");
  cmd->add_option("--device", o->device, "cpu | cuda")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "bf16 | f32: the model's dtype on a GPU")->capture_default_str();
  return [cmd, o] { return cmd->parsed() ? run_generate(*o) : -1; };
}

}  // namespace ptune::launch
