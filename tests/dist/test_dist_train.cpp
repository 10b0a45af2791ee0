// Data-parallel training through the binary under mpirun: N ranks train
// exactly what one process trains on the same global batch (losses within
// 1e-5, final parameters within 5e-5 norm-wise: max_relative_difference),
// with the frozen weights replicated or sharded; the run reports its communication, which matches the model
// (2Ψ − Ψ_pinned all-gathered per micro-batch, Ψ with keep; 4·trainables
// all-reduced); a failing rank ends the job promptly; SIGTERM leaves a
// checkpoint that resumes to the same losses, on another number of ranks
// too.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"

namespace ptune {
namespace {

namespace fs = std::filesystem;

using Proc = testing::CliRun;
using testing::ptune_cmd;
using testing::shell;
using testing::step_losses;

// ‖a − b‖₂ / ‖a‖₂, the worst over the parameter tensors of two checkpoints.
// (Norm-wise, not element-wise: AdamW's step g/(√v + ε) turns the rounding
// of a gradient element far below ε — summed in another order over ranks,
// or by GEMMs of other row counts — into a relative change of that one
// element of ~1e-3; the tensor moves by ~1e-6. Measured: GPT-2 P-Tuning's
// mlp_head.0.weight (128, 128) has one element with |g| ≈ 2e-9 that ends
// 7e-5 apart on 2 ranks, 1.1e-5 of the tensor's norm; every other tensor
// stays within 7e-7.)
double max_relative_difference(const fs::path& a, const fs::path& b) {
  const auto fa = io::SafetensorsFile::open(a.string()), fb = io::SafetensorsFile::open(b.string());
  EXPECT_EQ(fa.names(), fb.names());
  double worst = 0.0;
  for (const std::string& n : fa.names()) {
    if (!n.starts_with("params/")) continue;  // the trained values (not the optimizer's moments)
    const Tensor x = fa.load(n), y = fb.load(n);
    EXPECT_EQ(x.numel(), y.numel()) << n;
    double diff = 0.0, scale = 0.0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double d = double(x.data<float>()[i]) - double(y.data<float>()[i]);
      diff += d * d;
      scale += double(x.data<float>()[i]) * double(x.data<float>()[i]);
    }
    worst = std::max(worst, std::sqrt(diff / std::max(scale, 1e-30)));
  }
  return worst;
}

class DistTrain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("ptune_dist_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    for (const char* arch : {"bert", "gpt2", "qwen3", "gemma3_text", "phi3"})
      ASSERT_EQ(0, shell(ptune_cmd(0, fmt::format("init-model --arch {} --tokenizer recipes/data/quickstart/tokenizer.json"
                                                  " --out {}", arch, (*root_ / arch).string())))
                       .status);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static fs::path* root_;

  // Trains the quickstart recipe for `steps` optimizer steps of a global
  // batch of 8 on `np` ranks.
  // env: variables set for the run ("NAME=value … ").
  Proc train(const std::string& arch, const std::string& run, int np, const std::string& extra, int steps = 10,
             const std::string& env = "") {
    const int per_rank = 8 / std::max(np, 1);
    return shell(env + ptune_cmd(np, fmt::format("train recipes/quickstart.yaml model.path={} train.output_dir={} "
                                           "train.micro_batch={} train.max_steps={} train.log_every=1 "
                                           "train.schedule=constant train.lr=0.005 data.eval= {}",
                                           (*root_ / arch).string(), (*root_ / run).string(), per_rank, steps, extra)));
  }
  fs::path dir(const std::string& run) const { return *root_ / run; }
};
fs::path* DistTrain::root_ = nullptr;

struct Case {
  std::string arch, method;
};

class DistEquivalence : public DistTrain, public ::testing::WithParamInterface<Case> {};

TEST_P(DistEquivalence, RanksTrainWhatOneProcessTrains) {
  const auto& [arch, method] = GetParam();
  const std::string m = "method.name=" + method;
  const std::string base = arch + "_" + method + "_np1";
  const Proc one = train(arch, base, 0, m);
  ASSERT_EQ(one.status, 0) << one.output;
  const std::vector<double> expected = step_losses(dir(base));
  ASSERT_EQ(expected.size(), 10u);
  for (int np : {1, 2, 4}) {
    for (const char* shard : {"none", "world"}) {
      if (np == 1 && std::string(shard) == "none") continue;  // mpirun -np 1, shard none: as the base
      const std::string run = fmt::format("{}_{}_mpi{}_{}", arch, method, np, shard);
      SCOPED_TRACE(run);
      const Proc r = train(arch, run, np, m + " model.shard=" + shard);
      ASSERT_EQ(r.status, 0) << r.output;
      const std::vector<double> losses = step_losses(dir(run));
      ASSERT_EQ(losses.size(), expected.size());
      for (size_t i = 0; i < losses.size(); ++i)
        EXPECT_LE(std::abs(losses[i] - expected[i]) / std::abs(expected[i]), 1e-5) << "step " << i + 1;
      EXPECT_LE(max_relative_difference(dir(base) / "checkpoint-last/state.safetensors",
                                        dir(run) / "checkpoint-last/state.safetensors"),
                5e-5);
      // Only rank 0 writes: one metrics file, one progress stream.
      const nlohmann::json report = io::read_json_file((dir(run) / "dist.json").string());
      EXPECT_EQ(report["world_size"], np);
      EXPECT_EQ(report["grad_all_reduce_bytes_per_step"], 4 * report["trainable_parameters"].get<int64_t>());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, DistEquivalence,
                         ::testing::Values(Case{"bert", "prompt-tuning"}, Case{"bert", "prefix-tuning"},
                                           Case{"bert", "p-tuning"}, Case{"bert", "p-tuning-v2"},
                                           Case{"gpt2", "prompt-tuning"}, Case{"gpt2", "prefix-tuning"},
                                           Case{"gpt2", "p-tuning"}, Case{"gpt2", "p-tuning-v2"},
                                           // LLaMA family: GQA prefixes, the score head, Qwen3's q/k norms
                                           Case{"qwen3", "p-tuning-v2"},
                                           // Gemma 3: √C-scaled words beside unscaled prompt rows, norms around blocks
                                           Case{"gemma3_text", "prompt-tuning"},
                                           // Phi-3: fused qkv_proj / gate_up_proj units, the prefix MLP over GQA
                                           Case{"phi3", "prefix-tuning"}),
                         [](const auto& info) {
                           std::string n = info.param.arch + "_" + info.param.method;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// All-gathered bytes per step, from the unit sizes the run reports: every
// unit once in forward, the blocks again in backward unless kept (P-Tuning
// v2's prefixes reach layer 0; BERT's key-value prefix needs no embedding
// gradient, so the embeddings are not gathered again).
// shard: node on one machine gathers over the same 4 ranks as world.
TEST_F(DistTrain, CommunicationMatchesTheModel) {
  for (const auto& [shard, keep] : {std::pair{"world", false}, std::pair{"world", true}, std::pair{"node", false}}) {
    const std::string run = fmt::format("comm_{}_{}", shard, keep);
    SCOPED_TRACE(run);
    const Proc r =
        train("bert", run, 4, fmt::format("model.shard={} model.shard_keep_for_backward={}", shard, keep), 3);
    ASSERT_EQ(r.status, 0) << r.output;
    const nlohmann::json j = io::read_json_file((dir(run) / "dist.json").string());
    const std::vector<int64_t> units = j["unit_bytes"];
    ASSERT_EQ(units.size(), 4u);  // embeddings, 2 blocks, heads
    int64_t psi = 0;
    for (int64_t u : units) psi += u;
    const int64_t blocks = units[1] + units[2];
    EXPECT_EQ(j["all_gather_bytes_per_step"], keep ? psi : psi + blocks);
    EXPECT_LE(j["all_gather_bytes_per_step"].get<int64_t>(), 2 * psi);
    EXPECT_EQ(j["grad_all_reduce_bytes_per_step"], 4 * j["trainable_parameters"].get<int64_t>());
    // The gathers are padded to a multiple of the world size only.
    EXPECT_LE(psi - j["frozen_bytes_unsharded"].get<int64_t>(), 4 * 4 * int64_t(units.size()));
  }
}

std::vector<nlohmann::json> evals(const fs::path& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto m = nlohmann::json::parse(line);
    if (m.contains("split") || m.contains("accuracy")) out.push_back(m);
  }
  return out;
}

// 10 training examples on 3 ranks (global batch 9): the epoch's last global
// batch has one example, so two ranks run a stand-in with weight 0 to keep
// the sharded gathers in step; 400 eval examples in global batches of 21
// leave 1 at the end likewise. Losses and the reduced eval metrics are the
// single process's.
TEST_F(DistTrain, UnevenLastBatchesTrainAndEvaluateAsOneProcess) {
  const fs::path train10 = *root_ / "train10.jsonl";
  {
    std::ifstream in(fs::path(PTUNE_SOURCE_DIR) / "recipes/data/quickstart/train.jsonl");
    std::ofstream out(train10);
    std::string line;
    for (int i = 0; i < 10 && std::getline(in, line); ++i) out << line << "\n";
  }
  const std::string common = fmt::format("data.train={} data.eval=recipes/data/quickstart/eval.jsonl "
                                         "train.max_steps=4 train.eval_every=2 train.log_every=1 "
                                         "train.schedule=constant train.lr=0.005",
                                         train10.string());
  const auto run = [&](int np, const std::string& name, const std::string& extra) {
    return shell(ptune_cmd(np, fmt::format("train recipes/quickstart.yaml model.path={} train.output_dir={} {} {}",
                                           (*root_ / "bert").string(), dir(name).string(), common, extra)));
  };
  const Proc one = run(0, "uneven1", "train.micro_batch=9 train.eval_batch=21");
  ASSERT_EQ(one.status, 0) << one.output;
  const Proc three = run(3, "uneven3", "train.micro_batch=3 train.eval_batch=7 model.shard=world");
  ASSERT_EQ(three.status, 0) << three.output;
  const std::vector<double> a = step_losses(dir("uneven1")), b = step_losses(dir("uneven3"));
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_LE(std::abs(a[i] - b[i]) / std::abs(a[i]), 1e-5) << "step " << i + 1;
  const auto ea = evals(dir("uneven1")), eb = evals(dir("uneven3"));
  ASSERT_EQ(ea.size(), 2u);
  ASSERT_EQ(eb.size(), 2u);
  for (size_t i = 0; i < ea.size(); ++i) {
    EXPECT_EQ(eb[i]["examples"], 400);
    EXPECT_DOUBLE_EQ(ea[i]["accuracy"].get<double>(), eb[i]["accuracy"].get<double>());
    EXPECT_DOUBLE_EQ(ea[i]["macro_f1"].get<double>(), eb[i]["macro_f1"].get<double>());
    EXPECT_LE(std::abs(ea[i]["loss"].get<double>() - eb[i]["loss"].get<double>()) / ea[i]["loss"].get<double>(), 1e-5);
  }
}

// The masked-LM verbalizer reads the heads unit (MLM dense, norm, bias)
// through the gate and the tied decoder from the embeddings, which stay
// gathered (keep_embeddings): sharded over 2 ranks it trains what one
// process trains.
TEST_F(DistTrain, VerbalizerWithTheTiedDecoderShards) {
  const fs::path recipe = *root_ / "verbalizer.yaml";
  {
    std::ifstream in(fs::path(PTUNE_SOURCE_DIR) / "recipes/quickstart.yaml");
    std::ofstream out(recipe);
    for (std::string line; std::getline(in, line);) {
      if (line.find("kind: classification") != std::string::npos) line = "  kind: verbalizer";
      if (line.find("text: \"{sentence}\"") != std::string::npos)
        line = "  text: \"{sentence} it was [MASK] .\"\n  verbalizer: {negative: bad, positive: good}";
      out << line << "\n";
    }
  }
  const auto run = [&](int np, const std::string& name, const std::string& extra) {
    return shell(ptune_cmd(np, fmt::format("train {} model.path={} train.output_dir={} train.max_steps=5 "
                                           "train.log_every=1 data.eval= train.schedule=constant train.lr=0.005 "
                                           "method.name=prompt-tuning {}",
                                           recipe.string(), (*root_ / "bert").string(), dir(name).string(), extra)));
  };
  const Proc one = run(0, "verb1", "train.micro_batch=8");
  ASSERT_EQ(one.status, 0) << one.output;
  const Proc two = run(2, "verb2", "train.micro_batch=4 model.shard=world");
  ASSERT_EQ(two.status, 0) << two.output;
  const std::vector<double> a = step_losses(dir("verb1")), b = step_losses(dir("verb2"));
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), 5u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_LE(std::abs(a[i] - b[i]) / std::abs(a[i]), 1e-5) << "step " << i + 1;
  EXPECT_LE(max_relative_difference(dir("verb1") / "checkpoint-last/state.safetensors",
                                    dir("verb2") / "checkpoint-last/state.safetensors"),
            1e-5);
}

// A rank that throws takes the job down at once, naming itself.
TEST_F(DistTrain, AFailingRankEndsTheJob) {
  const auto start = std::chrono::steady_clock::now();
  const Proc r = shell("PTUNE_FAIL_AT_STEP=3 PTUNE_FAIL_RANK=1 " +
                          ptune_cmd(4, fmt::format("train recipes/quickstart.yaml model.path={} train.output_dir={} "
                                                   "train.micro_batch=2 train.max_steps=1000 data.eval= "
                                                   "model.shard=world",
                                                   (*root_ / "bert").string(), dir("fail").string())));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.status, 0);
  EXPECT_LT(seconds, 30.0);
  EXPECT_NE(r.output.find("ptune: rank 1: error: injected failure before step 3"), std::string::npos) << r.output;
}

// model.gradient_checkpointing reruns each block before its backward: the
// same losses and trained values, bit for bit, in one process and on 2
// sharded ranks (the rerun runs inside the block's gather).
TEST_F(DistTrain, GradientCheckpointingTrainsTheSameBits) {
  for (const auto& [np, shard] : {std::pair{0, "none"}, std::pair{2, "world"}}) {
    const std::string base = fmt::format("gc_off_{}", np), rerun = fmt::format("gc_on_{}", np);
    const std::string args = fmt::format("model.shard={} method.name=p-tuning-v2", shard);
    ASSERT_EQ(train("gpt2", base, np, args).status, 0);
    const Proc r = train("gpt2", rerun, np, args + " model.gradient_checkpointing=true");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(step_losses(dir(rerun)), step_losses(dir(base))) << np << " ranks";
    EXPECT_EQ(max_relative_difference(dir(base) / "checkpoint-last/state.safetensors",
                                      dir(rerun) / "checkpoint-last/state.safetensors"),
              0.0);
    const auto peak = [&](const std::string& run) {
      return io::read_json_file((dir(run) / "dist.json").string())["activation_peak_bytes_per_rank"].get<int64_t>();
    };
    EXPECT_LT(peak(rerun), peak(base));
  }
}

// ptune eval and predict under mpirun: each rank evaluates its slice on its
// part of a sharded model; rank 0 prints the reduced metrics once and
// writes every prediction in input order — those of one process.
TEST_F(DistTrain, EvalAndPredictOnShardedRanksMatchOneProcess) {
  ASSERT_EQ(train("bert", "eval_src", 0, "").status, 0);
  const auto eval = [&](int np, const char* shard) {
    const Proc r = shell(ptune_cmd(np, fmt::format("eval recipes/quickstart.yaml model.path={} model.shard={} "
                                                   "--adapter {} --data recipes/data/quickstart/eval.jsonl",
                                                   (*root_ / "bert").string(), shard,
                                                   (dir("eval_src") / "adapter").string())));
    EXPECT_EQ(r.status, 0) << r.output;
    const size_t open = r.output.find('{');
    EXPECT_EQ(r.output.find('{', open + 1), std::string::npos) << "printed more than once:\n" << r.output;
    return nlohmann::json::parse(r.output.substr(open, r.output.find('}', open) - open + 1));
  };
  const nlohmann::json one = eval(0, "none");
  for (const auto& [np, shard] : {std::pair{2, "world"}, std::pair{4, "world"}, std::pair{2, "none"}}) {
    SCOPED_TRACE(fmt::format("{} ranks, shard {}", np, shard));
    const nlohmann::json got = eval(np, shard);
    EXPECT_EQ(got["examples"], one["examples"]);
    EXPECT_EQ(got["accuracy"], one["accuracy"]);
    EXPECT_NEAR(got["loss"].get<double>(), one["loss"].get<double>(), 1e-6 * one["loss"].get<double>());
  }

  const auto predict = [&](int np) {
    const fs::path out = dir(fmt::format("predictions_{}.jsonl", np));
    const Proc r = shell(ptune_cmd(np, fmt::format("predict recipes/quickstart.yaml model.path={} model.shard=world "
                                                   "--adapter {} --input recipes/data/quickstart/eval.jsonl --output {}",
                                                   (*root_ / "bert").string(), (dir("eval_src") / "adapter").string(),
                                                   out.string())));
    EXPECT_EQ(r.status, 0) << r.output;
    std::vector<nlohmann::json> lines;
    std::ifstream in(out);
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  };
  const std::vector<nlohmann::json> alone = predict(0), three = predict(3);
  ASSERT_EQ(three.size(), alone.size());
  ASSERT_EQ(alone.size(), one["examples"].get<size_t>());
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_EQ(three[i]["line"], alone[i]["line"]) << i;
    EXPECT_EQ(three[i]["prediction"], alone[i]["prediction"]) << i;
    for (size_t k = 0; k < alone[i]["scores"].size(); ++k)
      EXPECT_NEAR(three[i]["scores"][k].get<double>(), alone[i]["scores"][k].get<double>(), 1e-6) << i;
  }
}

// Token classification on ranks: training reduces the tagged-token counts
// (the loss is normalised by the global batch's tagged tokens, not each
// rank's), eval reduces the entity counts, predict gathers every word's tag
// in dataset order — all as one process computes them.
TEST_F(DistTrain, TokenClassificationOnRanksMatchesOneProcess) {
  for (const char* split : {"train", "eval"})
    testing::write_tagged_quickstart(dir(fmt::format("tagged_{}.jsonl", split)), split, 48);
  const std::string recipe = fmt::format(
      "recipes/ner_ptuning_v2_minilm.yaml model.path={} data.train={} data.eval= data.max_length=32 "
      "task.classifier_dropout=0 method.prefix_dropout=0",  // dropout masks differ with the rank count
      (*root_ / "bert").string(), dir("tagged_train.jsonl").string());
  const auto train_on = [&](int np, const std::string& run) {
    const Proc r = shell(ptune_cmd(np, fmt::format("train {} train.output_dir={} train.micro_batch={} train.max_steps=4 "
                                                   "train.log_every=1 train.schedule=constant model.shard=world",
                                                   recipe, dir(run).string(), 8 / std::max(np, 1))));
    EXPECT_EQ(r.status, 0) << r.output;
    return step_losses(dir(run));
  };
  const std::vector<double> one = train_on(0, "ner_one"), two = train_on(2, "ner_two");
  ASSERT_EQ(one.size(), 4u);
  ASSERT_EQ(two.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(two[i], one[i], 1e-5 * one[i]) << "step " << i + 1;

  const std::string adapter = (dir("ner_one") / "adapter").string();
  const auto eval = [&](int np) {
    const Proc r = shell(ptune_cmd(np, fmt::format("eval {} model.shard=world --adapter {} --data {}", recipe, adapter,
                                                   dir("tagged_eval.jsonl").string())));
    EXPECT_EQ(r.status, 0) << r.output;
    const size_t open = r.output.find('{');  // one JSON line (with a nested per-type object)
    return nlohmann::json::parse(r.output.substr(open, r.output.find('\n', open) - open));
  };
  const nlohmann::json alone = eval(0), three = eval(3);
  for (const char* key : {"accuracy", "macro_f1", "precision", "recall", "f1", "tokens", "entities"})
    EXPECT_EQ(three[key], alone[key]) << key;
  EXPECT_NEAR(three["loss"].get<double>(), alone["loss"].get<double>(), 1e-6 * alone["loss"].get<double>());

  const auto predict = [&](int np) {
    const fs::path out = dir(fmt::format("ner_predictions_{}.jsonl", np));
    const Proc r = shell(ptune_cmd(np, fmt::format("predict {} model.shard=world --adapter {} --input {} --output {}",
                                                   recipe, adapter, dir("tagged_eval.jsonl").string(), out.string())));
    EXPECT_EQ(r.status, 0) << r.output;
    std::vector<nlohmann::json> lines;
    std::ifstream in(out);
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line)["tags"]);
    return lines;
  };
  const std::vector<nlohmann::json> p1 = predict(0), p3 = predict(3);
  ASSERT_EQ(p1.size(), 48u);
  EXPECT_EQ(p3, p1);
}

// Ranks that mpirun does not bind (oversubscribed here: 3 on this
// machine's cores) split the node's CPUs instead of each starting a thread
// per CPU; OMP_NUM_THREADS, when set, wins.
TEST_F(DistTrain, UnboundRanksShareTheNodesCpus) {
  const std::string bench = "bench --layers 1 --hidden 64 --heads 2 --vocab 100 --batch 1 --seq 8 --steps 1 --warmup 0";
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  const auto threads = [&](const std::string& env) {
    const Proc r = shell(env + " " + ptune_cmd(3, bench));
    EXPECT_EQ(r.status, 0) << r.output;
    std::vector<int> seen;
    for (size_t at = r.output.find("threads="); at != std::string::npos; at = r.output.find("threads=", at + 1))
      seen.push_back(std::atoi(r.output.c_str() + at + 8));
    EXPECT_EQ(seen.size(), 3u) << r.output;
    return seen;
  };
  for (int t : threads("env -u OMP_NUM_THREADS")) EXPECT_EQ(t, std::max(1L, online / 3));
  for (int t : threads("OMP_NUM_THREADS=2")) EXPECT_EQ(t, 2);
}

// A checkpoint resumes on another number of ranks that reads the same
// global micro-batch (micro_batch × ranks): 2 × 4 continues as 4 × 2, and as
// one process × 8, to the losses of an uninterrupted run; another global
// micro-batch is refused with the setting that would resume.
TEST_F(DistTrain, ResumesOnAnotherWorldSizeWithTheSameGlobalMicroBatch) {
  ASSERT_EQ(train("bert", "whole", 2, "", 6).status, 0);
  const std::vector<double> full = step_losses(dir("whole"));
  ASSERT_EQ(full.size(), 6u);

  ASSERT_EQ(train("bert", "elastic", 2, "", 2).status, 0);
  const Proc four = train("bert", "elastic", 4, "", 4);
  ASSERT_EQ(four.status, 0) << four.output;
  EXPECT_NE(four.output.find("resumed from"), std::string::npos) << four.output;
  const Proc one = train("bert", "elastic", 0, "", 6);
  ASSERT_EQ(one.status, 0) << one.output;
  const std::vector<double> resumed = step_losses(dir("elastic"));
  ASSERT_EQ(resumed.size(), 6u);
  for (size_t i = 0; i < full.size(); ++i) EXPECT_NEAR(resumed[i], full[i], 1e-5 * std::abs(full[i])) << "step " << i + 1;

  const Proc r = train("bert", "elastic", 4, "train.micro_batch=4", 8);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("was written by a 1-rank job with train.micro_batch 8 (a global micro-batch of 8) and this "
                          "job has 4 ranks with train.micro_batch 4"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("(train.micro_batch=2 on 4 ranks)"), std::string::npos) << r.output;
}

// SIGTERM on one rank (as Slurm pre-emption signals the tasks): every rank
// saves at the next step boundary and exits 0; the resumed run continues
// to the losses of an uninterrupted one. Rank 1 raises the signal before
// step 4 (PTUNE_SIGTERM_AT_STEP): sent from outside after the first steps,
// it could arrive once the 40 steps (a fraction of a second) were over.
TEST_F(DistTrain, SigtermCheckpointsAndResumes) {
  const std::string args = "model.shard=world train.save_every=0";
  ASSERT_EQ(train("bert", "sig_full", 2, args, 40).status, 0);
  const std::vector<double> full = step_losses(dir("sig_full"));
  ASSERT_EQ(full.size(), 40u);

  const Proc stopped = train("bert", "sig", 2, args, 40, "PTUNE_SIGTERM_AT_STEP=4 PTUNE_FAIL_RANK=1 ");
  ASSERT_EQ(stopped.status, 0) << stopped.output;
  EXPECT_NE(stopped.output.find("stopped by a signal at step 3"), std::string::npos) << stopped.output;
  EXPECT_EQ(step_losses(dir("sig")).size(), 3u);
  ASSERT_TRUE(fs::exists(dir("sig") / "checkpoint-last/trainer_state.json"));

  ASSERT_EQ(train("bert", "sig", 2, args, 40).status, 0);  // resumes
  const std::vector<double> resumed = step_losses(dir("sig"));
  ASSERT_EQ(resumed.size(), 40u);
  for (size_t i = 0; i < resumed.size(); ++i) EXPECT_EQ(resumed[i], full[i]) << "step " << i + 1;
}

}  // namespace
}  // namespace ptune
