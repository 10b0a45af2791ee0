// Training on one GPU against the same run on the CPU, through the binary:
// `ptune train` with model.device=cuda on tiny random BERT and LLaMA models
// (P-Tuning v2, prompt tuning, prefix tuning with its MLP, P-Tuning with its
// bi-LSTM; token classification), the step losses compared with the CPU run's; then `ptune eval`
// of the GPU-trained adapter on both devices.
//
// Tolerances: f32 — the GPU only reorders sums (no TF32), so the losses of
// five AdamW steps agree to 1e-3 relative (AdamW's g/√v amplifies the
// rounding of small gradients a little each step). bf16 — the frozen model
// and its activations round to 8 mantissa bits (cuda_test_util.h); the
// loss of a 2-layer model then moves by ~1e-2, bounded here by 5e-2
// absolute on losses near ln 2 and 1% relative on larger (LM) losses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_util.h"
#include "cuda/cuda_test_util.h"

namespace ptune {
namespace {

namespace fs = std::filesystem;
using testing::ptune;
using testing::ptune_cmd;
using testing::shell;
using testing::step_losses;

class CudaTrain : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    if (cuda_device_count() == 0) return;
    root_ = new fs::path(fs::temp_directory_path() / ("ptune_cuda_train_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    for (const char* arch : {"bert", "llama"}) {
      const auto r = ptune(fmt::format("init-model --arch {} --tokenizer recipes/data/quickstart/tokenizer.json --out {}",
                                       arch, (*root_ / arch).string()));
      ASSERT_EQ(r.status, 0) << r.output;
    }
    testing::write_tagged_quickstart(*root_ / "tagged.jsonl", "train", 64);
  }
  static void TearDownTestSuite() {
    if (!root_) return;
    fs::remove_all(*root_);
    delete root_;
    root_ = nullptr;
  }
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  }

  // Trains 5 steps of a recipe on a global batch of 8, on `np` ranks under
  // mpirun (0: one plain process); returns the run directory.
  static fs::path train(const std::string& recipe, const std::string& arch, const std::string& run,
                        const std::string& extra, int np = 0) {
    const fs::path dir = *root_ / run;
    const auto r = shell(ptune_cmd(
        np, fmt::format("train recipes/{}.yaml model.path={} train.output_dir={} train.max_steps=5 train.log_every=1 "
                        "train.eval_every=0 train.micro_batch={} train.schedule=constant {}",
                        recipe, (*root_ / arch).string(), dir.string(), 8 / std::max(np, 1), extra)));
    EXPECT_EQ(r.status, 0) << r.output;
    return dir;
  }

  static fs::path* root_;
};
fs::path* CudaTrain::root_ = nullptr;

struct Method {
  std::string recipe, arch, overrides;
};

void expect_gpu_trains_as_cpu(const Method& m, const std::string& tag) {
  SCOPED_TRACE(tag);
  const fs::path cpu = CudaTrain::train(m.recipe, m.arch, tag + "_cpu", m.overrides);
  const fs::path f32 = CudaTrain::train(m.recipe, m.arch, tag + "_f32", m.overrides + " model.device=cuda model.dtype=f32");
  const fs::path bf16 = CudaTrain::train(m.recipe, m.arch, tag + "_bf16", m.overrides + " model.device=cuda");
  const std::vector<double> a = step_losses(cpu), b = step_losses(f32), c = step_losses(bf16);
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), 5u);
  ASSERT_EQ(c.size(), 5u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(b[i], a[i], 1e-3 * std::abs(a[i])) << "f32 step " << i + 1;
    EXPECT_NEAR(c[i], a[i], std::max(5e-2, 1e-2 * std::abs(a[i]))) << "bf16 step " << i + 1;
  }
  EXPECT_TRUE(fs::exists(f32 / "adapter" / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(bf16 / "checkpoint-last" / "trainer_state.json"));
}

TEST_F(CudaTrain, PTuningV2OnBertMatchesTheCpuRun) {
  expect_gpu_trains_as_cpu({"quickstart", "bert", ""}, "bert_ptv2");
}

TEST_F(CudaTrain, PromptTuningAndPrefixMlpMatchTheCpuRun) {
  expect_gpu_trains_as_cpu({"quickstart", "bert", "method.name=prompt-tuning"}, "bert_prompt");
  expect_gpu_trains_as_cpu({"quickstart", "bert", "method.name=prefix-tuning"}, "bert_prefix");
}

// P-Tuning's bi-LSTM prompt encoder (ops/recurrent.h) on the GPU, with
// dropout between its two layers (the same Philox masks on both devices).
// At the quickstart's lr 0.05 AdamW's first near-sign steps throw the
// LSTM's 190k parameters about and the loss doubles in five steps; 0.005
// keeps the run smooth, so the comparison measures rounding, not chaos.
TEST_F(CudaTrain, PTuningLstmMatchesTheCpuRun) {
  expect_gpu_trains_as_cpu({"quickstart", "bert", "method.name=p-tuning method.encoder_dropout=0.1 train.lr=0.005"},
                           "bert_ptuning_lstm");
}

TEST_F(CudaTrain, LlamaScoreHeadMatchesTheCpuRun) {
  expect_gpu_trains_as_cpu({"llama_prefix_score_classification", "llama", ""}, "llama_ptv2");
}

// The masked-LM verbalizer (label-word columns gathered on the device, the
// tied decoder) and the causal-LM head (shifted host labels uploaded).
TEST_F(CudaTrain, VerbalizerAndCausalLmMatchTheCpuRun) {
  expect_gpu_trains_as_cpu({"quickstart", "bert",
                            "method.name=prompt-tuning task.kind=verbalizer 'data.text={sentence} it was [MASK] .' "
                            "'data.verbalizer={negative: bad, positive: good}' data.eval= train.lr=0.005"},
                           "bert_verbalizer");
  expect_gpu_trains_as_cpu({"llama_prompt_tuning_instruct", "llama", ""}, "llama_causal");
}

// The token-classification head: the tagged rows gathered and their
// gradients scattered back on the device (BERT's classifier, LLaMA's score).
TEST_F(CudaTrain, TokenClassificationMatchesTheCpuRun) {
  const std::string data = fmt::format("data.train={0}/tagged.jsonl data.eval= data.max_length=32", root_->string());
  expect_gpu_trains_as_cpu({"ner_ptuning_v2_minilm", "bert", data}, "bert_ner");
  expect_gpu_trains_as_cpu({"ner_ptuning_v2_minilm", "llama", data}, "llama_ner");
}

// Data-parallel runs on GPUs under mpirun, with the frozen weights sharded
// over the world's ranks or over the node's (an NCCL communicator of the
// node's ranks, bootstrapped through MPI's node communicator), train what
// one process trains: on two ranks where two GPUs are visible, else on
// one (NCCL over one rank; every unit still goes through the sharded
// gathers, which the report counts).
TEST_F(CudaTrain, ShardedRunsUnderMpirunMatchOneProcess) {
  const std::string f32 = "model.device=cuda model.dtype=f32 data.eval=";
  const std::vector<double> base = step_losses(train("quickstart", "bert", "shard_base", f32));
  ASSERT_EQ(base.size(), 5u);
  const int np = std::min(cuda_device_count(), 2);
  for (const char* shard : {"world", "node"}) {
    const std::string run = fmt::format("shard_{}_np{}", shard, np);
    SCOPED_TRACE(run);
    const fs::path dir = train("quickstart", "bert", run, f32 + " model.shard=" + shard, np);
    const std::vector<double> losses = step_losses(dir);
    ASSERT_EQ(losses.size(), base.size());
    for (size_t i = 0; i < base.size(); ++i)
      EXPECT_NEAR(losses[i], base[i], 1e-5 * std::abs(base[i])) << "step " << i + 1;
    const nlohmann::json report = io::read_json_file((dir / "dist.json").string());
    EXPECT_EQ(report["world_size"], np);
    EXPECT_EQ(report["shard"], shard);
    EXPECT_GE(report["all_gather_bytes_per_step"].get<int64_t>(), report["frozen_bytes_unsharded"].get<int64_t>());
  }
}

// The GPU-trained adapter evaluates the same on both devices.
TEST_F(CudaTrain, EvalOnGpuMatchesEvalOnCpu) {
  const fs::path run = train("quickstart", "bert", "eval_src", "model.device=cuda model.dtype=f32");
  const std::string base = fmt::format("eval recipes/quickstart.yaml model.path={} --adapter {}",
                                       (*root_ / "bert").string(), (run / "adapter").string());
  const auto cpu = ptune(base), gpu = ptune(base + " model.device=cuda model.dtype=f32");
  ASSERT_EQ(cpu.status, 0) << cpu.output;
  ASSERT_EQ(gpu.status, 0) << gpu.output;
  const auto last_json = [](const std::string& out) {
    return nlohmann::json::parse(out.substr(out.rfind('{', out.find_last_of('}'))));
  };
  const nlohmann::json a = last_json(cpu.output), b = last_json(gpu.output);
  EXPECT_EQ(a["accuracy"], b["accuracy"]);
  EXPECT_NEAR(double(b["loss"]), double(a["loss"]), 1e-4);
}

}  // namespace
}  // namespace ptune
