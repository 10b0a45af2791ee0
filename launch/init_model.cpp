// `ptune init-model`: a random-init model directory that transformers loads
// (for tests, benchmarks and the offline quickstart).
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "framework/io/checkpoint.h"
#include "framework/io/json_file.h"
#include "framework/model/spec.h"
#include "framework/model/weights.h"
#include "framework/text/tokenizer.h"

namespace ptune::launch {

namespace {

struct InitOptions {
  std::string arch;
  std::string preset = "tiny";
  std::string out;
  std::string tokenizer;  // a tokenizer.json to ship with the model (sets the vocabulary size)
  uint64_t seed = 0;
};

int init_model(const InitOptions& o) {
  PTUNE_CHECK(o.preset == "tiny", "unknown preset '{}' (available: tiny)", o.preset);
  model::ModelSpec spec = model::ModelSpec::tiny(model::arch_from_name(o.arch));
  spec.model_type = o.arch;  // xlm-roberta / camembert: RoBERTa's network under their own name
  if (!o.tokenizer.empty()) {
    const auto tokenizer = text::Tokenizer::from_file(o.tokenizer);
    spec.vocab_size = int64_t(tokenizer.vocab_size());
    if (spec.arch != model::Arch::kGpt2) {
      const auto pad = tokenizer.token_to_id(spec.arch == model::Arch::kBert ? "[PAD]" : "<pad>");
      if (!pad && spec.is_llama_family()) spec.pad_token_id = -1;  // LLaMA tokenizers often have none
      if (pad) spec.pad_token_id = int64_t(*pad);
      if (spec.arch == model::Arch::kRoberta) spec.position_offset = spec.pad_token_id + 1;
    }
  }
  // The heads of transformers' *LMHeadModel / *ForMaskedLM classes, and for
  // encoders the pooler *ForSequenceClassification uses (bert-base-uncased
  // ships both too).
  std::set<model::Component> components;
  if (spec.arch == model::Arch::kBert || spec.arch == model::Arch::kRoberta)
    components = {model::Component::kMlmHead, model::Component::kPooler};
  if (spec.is_llama_family() && !spec.tie_word_embeddings) components = {model::Component::kLmHead};
  Rng rng(o.seed);
  const auto weights = model::ModelWeights::random(spec, components, rng);

  std::filesystem::create_directories(o.out);
  io::write_json_file(o.out + "/config.json", spec.to_config());
  if (!o.tokenizer.empty())
    std::filesystem::copy_file(o.tokenizer, o.out + "/tokenizer.json", std::filesystem::copy_options::overwrite_existing);
  const std::string written = io::write_sharded(o.out, weights->to_checkpoint(), uint64_t(5) << 30);
  fmt::print("wrote {} ({} {}, {} parameters) and {}/config.json\n", written, o.preset, spec.arch_name(),
             weights->parameter_count(), o.out);
  return 0;
}

}  // namespace

Command add_init_model(CLI::App& app) {
  auto* cmd = app.add_subcommand("init-model", "Write a random-init Hugging Face model directory");
  auto o = std::make_shared<InitOptions>();
  cmd->add_option("--arch", o->arch,
                  "gpt2 | bert | roberta | xlm-roberta | camembert | llama | mistral | qwen2 | qwen3 | smollm3 | "
                  "gemma3_text | phi3")
      ->required()
      ->check(CLI::IsMember(
          {"gpt2", "bert", "roberta", "xlm-roberta", "camembert", "llama", "mistral", "qwen2", "qwen3",
           "smollm3", "gemma3_text", "phi3"}));
  cmd->add_option("--preset", o->preset, "model size")->capture_default_str();
  cmd->add_option("--out", o->out, "output directory")->required();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json to include (its vocabulary sizes the model)")
      ->check(CLI::ExistingFile);
  return [cmd, o] { return cmd->parsed() ? init_model(*o) : -1; };
}

}  // namespace ptune::launch
