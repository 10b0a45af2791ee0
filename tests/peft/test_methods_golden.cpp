// The four methods end to end against peft: on tiny GPT-2 (causal LM) and
// BERT (sequence classification), prompt tuning, prefix tuning with and
// without projection (= P-Tuning v2), P-Tuning MLP and LSTM
// (tests/golden/fixtures/methods, from gen_method_fixtures.py); and on a
// LLaMA causal LM with GQA 4:1, head_dim ≠ hidden/heads and llama3 RoPE
// (fixtures/llama/methods, from gen_llama_fixtures.py). Checked:
// the loss, the logits, the gradient of every trainable parameter after
// one forward/backward, the parameters after 3 AdamW steps, and the adapter
// `ptune export` writes against the one peft saved.
#include <gtest/gtest.h>

#include "expect_close.h"
#include "peft/peft_golden_util.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "framework/core/arena.h"
#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"
#include "framework/model/task_heads.h"
#include "framework/peft/adapter.h"
#include "framework/peft/prompt_model.h"
#include "framework/train/optimizer.h"

namespace ptune {
namespace {

namespace fs = std::filesystem;

using ptune::testing::expect_close;
using ptune::testing::ptune_name;

peft::PromptConfig method_config(const nlohmann::json& c) {
  const std::string type = c["peft_type"];
  peft::PromptConfig m;
  if (type == "PROMPT_TUNING") {
    m = peft::PromptConfig::preset(peft::Method::kPromptTuning);
  } else if (type == "PREFIX_TUNING") {
    m = peft::PromptConfig::preset(c["prefix_projection"].get<bool>() ? peft::Method::kPrefixTuning
                                                                      : peft::Method::kPTuningV2);
    if (c.contains("encoder_hidden_size")) m.encoder_hidden = c["encoder_hidden_size"];
  } else {
    m = peft::PromptConfig::preset(peft::Method::kPTuning);
    m.encoder = c["encoder_reparameterization_type"] == "LSTM" ? peft::Encoder::kLstm : peft::Encoder::kMlp;
    m.encoder_hidden = c["encoder_hidden_size"];
    m.encoder_layers = c.value("encoder_num_layers", 2);
  }
  m.num_virtual_tokens = c["num_virtual_tokens"];
  return m;
}

class Methods : public ::testing::TestWithParam<std::string>, protected testing::PromptGoldenRun {
 protected:
  void SetUp() override {
    const std::string root = std::string(PTUNE_FIXTURES);
    dir = root + "/" + GetParam();
    const nlohmann::json c = io::read_json_file(dir + "/case.json");
    config = method_config(c["peft_config"]);
    classification = c["peft_config"]["task_type"] == "SEQ_CLS";
    model = model::Transformer::load(root + "/" + c["model_dir"].get<std::string>());
    tensors = std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(dir + "/tensors.safetensors"));

    prompt = std::make_unique<peft::PromptModel>(config, *model, params);
    model::TaskOptions task;
    task.kind = classification ? model::TaskKind::kClassification : model::TaskKind::kCausalLm;
    task.classifier_dropout = 0.0f;
    head = model::TaskHead::create(task, *model, classification ? 3 : 0, {}, params);
    params.finalize();
    for (const auto& t : c["trainable"]) {
      const std::string name = t["name"];
      const size_t i = params.index(ptune_name(name));
      params.value(i).copy_from(tensors->load(name));
      params.set_decay(i, Decay::kApply);  // the fixture's AdamW decays every parameter
      names.push_back(name);
    }
    EXPECT_EQ(names.size(), params.entries().size()) << "ptune has trainable parameters peft does not";
    make_batch();
  }

  // peft's input conventions: virtual tokens first (input placement) with
  // mask 1, token type 0 and label −100.
  void make_batch() {
    const Tensor ids = tensors->load("input_ids", DType::kI32), mask = tensors->load("attention_mask", DType::kI32);
    const Tensor types = tensors->contains("token_type_ids") ? tensors->load("token_type_ids", DType::kI32) : Tensor();
    const Tensor labels = tensors->load("labels", DType::kI32);
    B = ids.size(0);
    T = ids.size(1);
    const int64_t P = config.placement == peft::Placement::kInput ? config.num_virtual_tokens : 0;
    prepended = P;
    const int64_t S = P + T;
    batch_ids = Tensor::empty({B, S}, DType::kI32);
    batch.attention_mask = Tensor::empty({B, S}, DType::kI32);
    if (types.defined()) batch_types = Tensor::zeros({B, S}, DType::kI32);
    if (!classification) batch.lm_labels = Tensor::empty({B, S}, DType::kI32);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s) {
        const bool virt = s < P;
        const int64_t t = s - P;
        batch_ids.data<int32_t>()[b * S + s] = virt ? int32_t(-(s + 1)) : ids.data<int32_t>()[b * T + t];
        batch.attention_mask.data<int32_t>()[b * S + s] = virt ? 1 : mask.data<int32_t>()[b * T + t];
        if (types.defined() && !virt) batch_types.data<int32_t>()[b * S + s] = types.data<int32_t>()[b * T + t];
        if (!classification) batch.lm_labels.data<int32_t>()[b * S + s] = virt ? -100 : labels.data<int32_t>()[b * T + t];
      }
    if (classification) batch.labels = labels;
  }

  // One forward/backward; returns the mean loss.
  double forward_backward(Arena& arena, model::HeadOutput* out = nullptr) {
    const model::HeadOutput o = step(arena);
    if (out) *out = o;
    return o.loss_sum / double(o.count);
  }

  bool classification = false;
  int64_t prepended = 0;
};

TEST_P(Methods, LossLogitsAndGradients) {
  Arena arena;
  model::HeadOutput out;
  const double loss = forward_backward(arena, &out);
  const double want = tensors->load("loss").data<float>()[0];
  EXPECT_NEAR(loss, want, 1e-5 * std::fabs(want));
  const Tensor logits = tensors->load("logits");
  if (classification) {
    expect_close("logits", out.scores, logits, 1e-5);
  } else {
    // Ours are the rows of the positions whose next token is labelled, in
    // (b, s) order over the S = P + T positions (virtual tokens first);
    // transformers' cover the T real tokens. Compare the rows both have.
    const int64_t S = prepended + T, V = logits.size(2);
    const int32_t* labels = batch.lm_labels.data<int32_t>();
    int64_t row = 0, compared = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s + 1 < S; ++s) {
        if (labels[b * S + s + 1] == -100) continue;
        if (s >= prepended) {
          expect_close("logits row", out.scores.select(row), logits.select(b).select(s - prepended), 1e-5);
          ++compared;
        }
        ++row;
      }
    EXPECT_EQ(row, out.scores.size(0));
    EXPECT_EQ(out.scores.size(1), V);
    EXPECT_GT(compared, 0);
  }
  for (const std::string& name : names)
    expect_close("grad." + name, params.grad(params.index(ptune_name(name))), tensors->load("grad." + name), 1e-4);
}

TEST_P(Methods, ThreeAdamWSteps) {
  train::OptimizerOptions o;
  o.lr = 1e-2f;
  o.weight_decay = 0.01f;
  train::AdamW adam(o, params);
  const Tensor losses = tensors->load("losses");
  Arena arena;
  for (int step = 0; step < 3; ++step) {
    const double loss = forward_backward(arena);
    EXPECT_NEAR(loss, losses.data<float>()[step], 1e-5 * std::fabs(losses.data<float>()[step])) << "step " << step;
    adam.step(params, o.lr);
    params.zero_grad();
    arena.reset();
  }
  for (const std::string& name : names)
    expect_close("step3." + name, params.value(params.index(ptune_name(name))), tensors->load("step3." + name), 1e-4);

  // The adapter ptune exports equals the one peft saved at this point.
  const fs::path out =
      fs::temp_directory_path() / ("ptune_adapter_" + fs::path(GetParam()).filename().string() + std::to_string(::getpid()));
  peft::save_adapter(out.string(), *prompt, params, {"model", classification ? model::TaskKind::kClassification
                                                                             : model::TaskKind::kCausalLm}, arena);
  testing::expect_adapter_like_peft(out, dir,
                                    {"peft_type", "task_type", "num_virtual_tokens", "token_dim", "num_layers",
                                     "num_attention_heads", "prefix_projection", "encoder_reparameterization_type",
                                     "encoder_hidden_size", "encoder_num_layers"},
                                    1e-4);
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(Peft, Methods,
                         ::testing::Values("methods/gpt2_prompt_tuning", "methods/gpt2_prefix_projection",
                                           "methods/gpt2_prefix", "methods/gpt2_ptuning_mlp", "methods/gpt2_ptuning_lstm",
                                           "methods/bert_prompt_tuning", "methods/bert_prefix_projection",
                                           "methods/bert_prefix", "methods/bert_ptuning_mlp", "methods/bert_ptuning_lstm",
                                           "llama/methods/llama_prompt_tuning", "llama/methods/llama_prefix",
                                           "llama/methods/llama_prefix_projection", "llama/methods/llama_ptuning_mlp"),
                         [](const auto& info) { return fs::path(info.param).filename().string(); });

}  // namespace
}  // namespace ptune
