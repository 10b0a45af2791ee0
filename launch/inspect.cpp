// `ptune inspect DIR`: what a Hugging Face model directory holds.
#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "framework/io/checkpoint.h"
#include "framework/model/spec.h"
#include "framework/model/weights.h"

namespace ptune::launch {

namespace {

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

int inspect(const std::string& dir) {
  const model::ModelSpec spec = model::ModelSpec::from_directory(dir);
  const io::CheckpointReader checkpoint = io::CheckpointReader::open(dir);
  // Every tensor the architecture needs is checked (name and shape); none is read.
  const auto weights = model::ModelWeights::describe(spec, checkpoint);

  std::string heads = spec.tie_word_embeddings ? "lm (tied)" : "lm";
  if (spec.arch != model::Arch::kGpt2) heads = weights->has(model::Component::kMlmHead) ? "mlm (tied)" : "";
  if (weights->has(model::Component::kPooler)) heads += heads.empty() ? "pooler" : ", pooler";
  if (spec.is_llama_family())
    heads = spec.tie_word_embeddings ? "lm (tied)" : weights->has(model::Component::kLmHead) ? "lm" : "";
  if (weights->has(model::Component::kScore)) heads += heads.empty() ? "score" : ", score";

  fmt::print("model        {}\n", dir);
  fmt::print("architecture {}\n", spec.arch_name());
  fmt::print("layers       {}\n", spec.layers);
  fmt::print("hidden       {}\n", spec.hidden);
  fmt::print("heads        {} (key/value heads {}, head dim {})\n", spec.heads, spec.kv_heads, spec.head_dim);
  fmt::print("mlp          {}\n", spec.intermediate);
  fmt::print("vocabulary   {}\n", spec.vocab_size);
  fmt::print("positions    {}\n", spec.max_positions);
  fmt::print("norm         {}-{}{}{}\n", spec.norm == ops::NormKind::kLayerNorm ? "layernorm" : "rmsnorm",
             spec.placement == model::NormPlacement::kPre ? "pre" : "post", spec.post_norms ? "+post" : "",
             spec.qk_norm ? ", per-head q/k rmsnorm" : "");
  std::vector<int64_t> nope, windowed;  // SmolLM3's layers without RoPE; the sliding-window layers
  for (int64_t l = 0; l < spec.layers; ++l) {
    if (spec.positions == model::PositionKind::kRope && !spec.rotates(l)) nope.push_back(l);
    if (spec.window(l) > 0) windowed.push_back(l);
  }
  // A window over every layer (Mistral, Phi-3) or some (Gemma 3's local layers).
  std::string window;
  if (!windowed.empty())
    window = int64_t(windowed.size()) == spec.layers
                 ? fmt::format(", sliding window {}", spec.sliding_window)
                 : fmt::format(", sliding window {} in layers {}", spec.sliding_window, fmt::join(windowed, " "));
  fmt::print("attention    {}{}{}\n", spec.is_decoder() ? "causal" : "bidirectional",
             nope.empty() ? "" : fmt::format(", no RoPE in layers {}", fmt::join(nope, " ")), window);
  if (spec.positions == model::PositionKind::kRope) {
    const model::RopeSpec& r = spec.rope;
    const char* scaling[] = {"", ", linear", ", dynamic", ", llama3", ", longrope"};
    fmt::print("rope         theta {}{}{}{}\n", r.theta, scaling[int(r.scaling)],
               r.scaling == model::RopeScaling::kNone
                   ? ""
                   : fmt::format(" ×{:g} from {} positions", r.factor, r.original_max_positions),
               spec.rotary_dim < spec.head_dim
                   ? fmt::format(", first {} of {} columns a head", spec.rotary_dim, spec.head_dim)
                   : "");
  }
  fmt::print("outputs      {}\n", heads.empty() ? "none" : heads);
  // What the model uses (as transformers counts parameters): not buffers
  // such as BERT's stored position_ids, nor tied weights twice.
  fmt::print("parameters   {}\n", with_commas(weights->parameter_count()));
  fmt::print("dtype        {}\n", dtype_name(checkpoint.dominant_dtype()));
  return 0;
}

}  // namespace

Command add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe a Hugging Face model directory");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("dir", *dir, "model directory (config.json + safetensors)")->required();
  return [cmd, dir] { return cmd->parsed() ? inspect(*dir) : -1; };
}

}  // namespace ptune::launch
