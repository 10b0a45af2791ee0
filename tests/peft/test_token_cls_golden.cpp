// Token classification (NER) end to end against transformers + peft
// (tests/golden/fixtures/token_cls, from gen_token_cls_fixtures.py): BERT,
// GPT-2 and LLaMA *ForTokenClassification heads (5 labels) under prompt
// tuning and P-Tuning v2 (prefix without projection), on a padded batch whose
// labels are −100 on special tokens, non-first subwords and padding. Checked:
// the loss (mean over the labelled tokens), the head's scores at the labelled
// positions, the gradients of the prompt and of the head after one
// forward/backward, and the adapter ptune saves against the one peft saved.
#include <gtest/gtest.h>

#include "expect_close.h"
#include "peft/peft_golden_util.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "framework/core/arena.h"
#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"
#include "framework/model/task_heads.h"
#include "framework/peft/adapter.h"
#include "framework/peft/prompt_model.h"

namespace ptune {
namespace {

namespace fs = std::filesystem;

using ptune::testing::expect_close;
using ptune::testing::ptune_name;

class TokenClsGolden : public ::testing::TestWithParam<std::string>, protected testing::PromptGoldenRun {
 protected:
  void SetUp() override {
    const std::string root = std::string(PTUNE_FIXTURES);
    dir = root + "/token_cls/" + GetParam();
    c = io::read_json_file(dir + "/case.json");
    const nlohmann::json& pc = c["peft_config"];
    ASSERT_EQ(pc["task_type"], "TOKEN_CLS");
    if (pc["peft_type"] == "PROMPT_TUNING") {
      config = peft::PromptConfig::preset(peft::Method::kPromptTuning);
    } else {
      ASSERT_EQ(pc["peft_type"], "PREFIX_TUNING");
      ASSERT_FALSE(pc["prefix_projection"].get<bool>());
      config = peft::PromptConfig::preset(peft::Method::kPTuningV2);
    }
    config.num_virtual_tokens = pc["num_virtual_tokens"];
    model = model::Transformer::load(root + "/" + c["model_dir"].get<std::string>());
    tensors = std::make_unique<io::SafetensorsFile>(io::SafetensorsFile::open(dir + "/tensors.safetensors"));

    prompt = std::make_unique<peft::PromptModel>(config, *model, params);
    model::TaskOptions task;
    task.kind = model::TaskKind::kTokenClassification;
    task.classifier_dropout = 0.0f;
    head = model::TaskHead::create(task, *model, c["task"]["num_labels"].get<int64_t>(), {}, params);
    params.finalize();
    for (const auto& t : c["trainable"]) {
      const std::string name = t["name"];
      params.value(params.index(ptune_name(name))).copy_from(tensors->load(name));
      names.push_back(name);
    }
    EXPECT_EQ(names.size(), params.entries().size()) << "ptune has trainable parameters peft does not";
    make_batch();
  }

  // ptune's layout: for prompt tuning the P virtual tokens come first as ids
  // −1…−P with mask 1; the fixture's labels already hold their −100 (B, P+T).
  void make_batch() {
    const Tensor ids = tensors->load("input_ids", DType::kI32), mask = tensors->load("attention_mask", DType::kI32);
    batch.tags = tensors->load("labels", DType::kI32);
    B = ids.size(0);
    T = ids.size(1);
    const int64_t S = batch.tags.size(1), P = S - T;
    ASSERT_EQ(P, config.placement == peft::Placement::kInput ? config.num_virtual_tokens : 0);
    batch_ids = Tensor::empty({B, S}, DType::kI32);
    batch.attention_mask = Tensor::empty({B, S}, DType::kI32);
    if (c["arch"] == "bert") batch_types = Tensor::zeros({B, S}, DType::kI32);  // one sequence: all type 0
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s) {
        const bool virt = s < P;
        batch_ids.data<int32_t>()[b * S + s] = virt ? int32_t(-(s + 1)) : ids.data<int32_t>()[b * T + s - P];
        batch.attention_mask.data<int32_t>()[b * S + s] = virt ? 1 : mask.data<int32_t>()[b * T + s - P];
        if (virt) EXPECT_EQ(batch.tags.data<int32_t>()[b * S + s], -100) << "virtual token with a label";
      }
  }

  nlohmann::json c;  // the fixture's config.json
};

TEST_P(TokenClsGolden, LossScoresAndGradients) {
  Arena arena;
  const model::HeadOutput out = step(arena);
  ASSERT_GT(out.count, 0);

  const Tensor logits = tensors->load("logits");  // (N, K) at the labelled positions, (b, t) order
  EXPECT_EQ(out.count, c["task"]["num_labelled"].get<int64_t>());
  EXPECT_EQ(out.count, logits.size(0));
  const double loss = out.loss_sum / double(out.count), want = tensors->load("loss").data<float>()[0];
  EXPECT_NEAR(loss, want, 1e-5 * std::fabs(want));
  ASSERT_EQ(out.scores.shape(), logits.shape());
  expect_close("scores", out.scores, logits, 1e-5);
  for (const std::string& name : names) {
    const Tensor want_grad = tensors->load("grad." + name), grad = params.grad(params.index(ptune_name(name)));
    EXPECT_EQ(grad.shape(), want_grad.shape()) << name;
    expect_close("grad." + name, grad, want_grad, 1e-4);
  }
}

// What ptune saves for a token-classification adapter is what peft saved:
// the same tensor names and values, and a config peft reads the same way.
TEST_P(TokenClsGolden, AdapterMatchesPeft) {
  Arena arena;
  const fs::path out = fs::temp_directory_path() / ("ptune_token_cls_" + GetParam() + std::to_string(::getpid()));
  peft::save_adapter(out.string(), *prompt, params,
                     {c["model_dir"].get<std::string>(), model::TaskKind::kTokenClassification}, arena);
  const nlohmann::json config_theirs = testing::expect_adapter_like_peft(
      out, dir,
      {"peft_type", "task_type", "num_virtual_tokens", "token_dim", "num_layers", "num_attention_heads",
       "num_transformer_submodules", "prefix_projection", "base_model_name_or_path", "inference_mode"},
      1e-6);
  const nlohmann::json config_mine = io::read_json_file((out / "adapter_config.json").string());
  // peft 0.21.2 writes ["classifier", "score", "classifier", "score"] for
  // TOKEN_CLS whatever the model (it appends its candidate names twice) and
  // PeftModelForTokenClassification adds both again on loading; ptune
  // writes the head it has. What matters: ptune's modules are among peft's,
  // and the module whose tensors were saved is listed.
  ASSERT_TRUE(config_mine["modules_to_save"].is_array());
  const auto& theirs_modules = config_theirs["modules_to_save"];
  for (const auto& m : config_mine["modules_to_save"])
    EXPECT_NE(std::find(theirs_modules.begin(), theirs_modules.end(), m), theirs_modules.end()) << m;
  const auto head_param = std::find_if(names.begin(), names.end(),
                                       [](const std::string& n) { return !n.starts_with("prompt_encoder."); });
  ASSERT_NE(head_param, names.end());
  const std::string module = ptune_name(*head_param).substr(0, ptune_name(*head_param).find('.'));
  EXPECT_EQ(config_mine["modules_to_save"], nlohmann::json::array({module}));
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(TokenCls, TokenClsGolden,
                         ::testing::Values("bert_prefix", "bert_prompt_tuning", "gpt2_prefix", "gpt2_prompt_tuning",
                                           "llama_prefix", "llama_prompt_tuning"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ptune
