// `ptune train | eval | predict | export` end to end, through the binary:
// every recipe in recipes/ trains for a few steps on a tiny random model;
// a resumed run reproduces the uninterrupted one exactly; bad recipes and
// data fail with messages that name the key, the file and line, the label.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "framework/io/json_file.h"
#include "framework/io/safetensors.h"
#include "framework/recipe/recipe.h"
#include "cli_util.h"

namespace ptune {
namespace {

namespace fs = std::filesystem;

using testing::CliRun, testing::ptune, testing::metrics, testing::step_losses;

class TrainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("ptune_train_cli_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    // Tiny random BERTs: one with MiniLM's real uncased WordPiece tokenizer
    // (for the SST-2/RTE recipes), one with the quickstart's.
    const std::string fixtures = PTUNE_FIXTURES;
    ASSERT_EQ(0, ptune(fmt::format("init-model --arch bert --tokenizer {}/tokenizers/bert/tokenizer.json --out {}",
                                   fixtures, (*root_ / "minilm-tiny").string()))
                     .status);
    ASSERT_EQ(0, ptune(fmt::format("init-model --arch bert --tokenizer recipes/data/quickstart/tokenizer.json --out {}",
                                   (*root_ / "quickstart-tiny").string()))
                     .status);
    // recipes/llama_*.yaml: a tiny LLaMA (GQA, RoPE, SwiGLU) on the quickstart vocabulary.
    ASSERT_EQ(0, ptune(fmt::format("init-model --arch llama --tokenizer recipes/data/quickstart/tokenizer.json --out {}",
                                   (*root_ / "llama-tiny").string()))
                     .status);
    write_ner_data();
  }
  // Token-classification data for recipes/ner_*.yaml (whose CoNLL-2003 the
  // tests do not have): TREC questions, a capitalised word after the first
  // tagged as a person (B-PER, I-PER when it follows another).
  static void write_ner_data() {
    std::ifstream in(std::string(PTUNE_DATASETS) + "/trec/train.jsonl");
    fs::create_directories(*root_ / "ner");
    std::ofstream train(*root_ / "ner/train.jsonl"), eval(*root_ / "ner/eval.jsonl");
    int n = 0;
    for (std::string line; n < 300 && std::getline(in, line); ++n) {
      std::istringstream words(nlohmann::json::parse(line)["question"].get<std::string>());
      nlohmann::json tokens = nlohmann::json::array(), tags = nlohmann::json::array();
      bool prev = false;
      for (std::string w; words >> w;) {
        const bool name = !tokens.empty() && w[0] >= 'A' && w[0] <= 'Z';
        tokens.push_back(w);
        tags.push_back(!name ? "O" : prev ? "I-PER" : "B-PER");
        prev = name;
      }
      (n < 200 ? train : eval) << nlohmann::json{{"tokens", tokens}, {"ner_tags", tags}}.dump() << "\n";
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static fs::path* root_;

  std::string model_for(const std::string& recipe) const {
    if (recipe.starts_with("llama_")) return (*root_ / "llama-tiny").string();
    return (*root_ / (recipe == "quickstart" ? "quickstart-tiny" : "minilm-tiny")).string();
  }
  // Trains a recipe for a few steps on its tiny model; returns the run dir.
  fs::path train(const std::string& recipe, const std::string& run, const std::string& extra = "") {
    const fs::path dir = *root_ / run;
    const CliRun r = ptune(fmt::format("train recipes/{}.yaml model.path={} train.output_dir={} {}", recipe,
                                    model_for(recipe), dir.string(), extra));
    EXPECT_EQ(r.status, 0) << r.output;
    return dir;
  }
};
fs::path* TrainCli::root_ = nullptr;

TEST_F(TrainCli, EveryRecipeTrains) {
  for (const auto& entry : fs::directory_iterator(fs::path(PTUNE_SOURCE_DIR) / "recipes")) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string name = entry.path().stem().string();
    SCOPED_TRACE(name);
    // Recipes name ../shared/datasets beside the checkout; tests read it
    // from wherever the build says it is.
    const recipe::Recipe r = recipe::load_recipe(entry.path().string());
    std::string data;
    const std::string shared = "../shared/datasets";
    for (const auto& [key, path] : {std::pair{"data.train", r.data.train}, std::pair{"data.eval", r.data.eval}})
      if (path.starts_with(shared)) data += fmt::format(" {}={}{}", key, PTUNE_DATASETS, path.substr(shared.size()));
    if (r.task.kind == model::TaskKind::kTokenClassification)
      data += fmt::format(" data.train={0}/ner/train.jsonl data.eval={0}/ner/eval.jsonl", root_->string());
    const fs::path run =
        train(name, "recipe_" + name, "train.max_steps=3 train.micro_batch=4 train.log_every=1" + data);
    const std::vector<double> losses = step_losses(run);
    ASSERT_EQ(losses.size(), 3u);
    for (double l : losses) EXPECT_TRUE(std::isfinite(l));
    EXPECT_TRUE(fs::exists(run / "adapter" / "adapter_model.safetensors"));
    EXPECT_TRUE(fs::exists(run / "recipe.yaml"));
    EXPECT_TRUE(fs::exists(run / "checkpoint-last" / "trainer_state.json"));
  }
}

TEST_F(TrainCli, ResumeReproducesTheUninterruptedRun) {
  const std::string opts = "train.schedule=constant train.log_every=1 train.eval_every=0 train.micro_batch=8";
  const fs::path full = train("quickstart", "full", opts + " train.max_steps=6");
  const fs::path split = train("quickstart", "split", opts + " train.max_steps=3");
  train("quickstart", "split", opts + " train.max_steps=6");  // resumes from checkpoint-last at step 3
  const std::vector<double> a = step_losses(full), b = step_losses(split);
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(a[i], b[i]) << "step " << i + 1;
  const auto fa = io::SafetensorsFile::open((full / "adapter/adapter_model.safetensors").string());
  const auto fb = io::SafetensorsFile::open((split / "adapter/adapter_model.safetensors").string());
  for (const std::string& n : fa.names()) {
    const Tensor x = fa.load(n), y = fb.load(n);
    EXPECT_EQ(0, std::memcmp(x.raw(), y.raw(), x.nbytes())) << n;
  }
}

TEST_F(TrainCli, EvalPredictAndExportUseTheAdapter) {
  const fs::path run = train("quickstart", "adapter_run", "train.max_steps=4 train.micro_batch=8");
  const nlohmann::json last = metrics(run).back().contains("split") ? metrics(run).back() : nlohmann::json();
  const std::string model = "model.path=" + model_for("quickstart");

  // eval on the adapter reproduces the trainer's final evaluation.
  const CliRun e = ptune(fmt::format("eval recipes/quickstart.yaml {} --adapter {}", model, (run / "adapter").string()));
  ASSERT_EQ(e.status, 0) << e.output;
  const nlohmann::json result = nlohmann::json::parse(e.output.substr(e.output.find('{')));
  std::vector<nlohmann::json> evals;
  for (const auto& m : metrics(run))
    if (m.contains("split")) evals.push_back(m);
  ASSERT_FALSE(evals.empty());
  EXPECT_DOUBLE_EQ(result["accuracy"].get<double>(), evals.back()["accuracy"].get<double>());
  EXPECT_NEAR(result["loss"].get<double>(), evals.back()["loss"].get<double>(), 1e-9);

  const fs::path predictions = *root_ / "predictions.jsonl";
  const CliRun p = ptune(fmt::format("predict recipes/quickstart.yaml {} --adapter {} --input "
                                  "recipes/data/quickstart/eval.jsonl --output {}",
                                  model, (run / "adapter").string(), predictions.string()));
  ASSERT_EQ(p.status, 0) << p.output;
  std::ifstream in(predictions);
  int lines = 0, correct = 0;
  std::ifstream gold(fs::path(PTUNE_SOURCE_DIR) / "recipes/data/quickstart/eval.jsonl");
  for (std::string line, g; std::getline(in, line) && std::getline(gold, g); ++lines) {
    const auto j = nlohmann::json::parse(line);
    correct += j["prediction"] == nlohmann::json::parse(g)["label"];
  }
  EXPECT_EQ(lines, 400);
  EXPECT_NEAR(double(correct) / lines, result["accuracy"].get<double>(), 1e-12);

  // export of the last checkpoint = the adapter the run wrote at its end.
  const fs::path exported = *root_ / "exported";
  const CliRun x = ptune(fmt::format("export recipes/quickstart.yaml {} --checkpoint {} --out {}", model,
                                  (run / "checkpoint-last").string(), exported.string()));
  ASSERT_EQ(x.status, 0) << x.output;
  const auto fa = io::SafetensorsFile::open((run / "adapter/adapter_model.safetensors").string());
  const auto fb = io::SafetensorsFile::open((exported / "adapter_model.safetensors").string());
  ASSERT_EQ(fa.names(), fb.names());
  for (const std::string& n : fa.names()) {
    const Tensor a = fa.load(n), b = fb.load(n);
    EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes())) << n;
  }
}

TEST_F(TrainCli, TokenClassificationEvalAndPredictAgreeWithTraining) {
  const std::string recipe = "recipes/ner_ptuning_v2_minilm.yaml";
  const std::string data = fmt::format("data.train={0}/ner/train.jsonl data.eval={0}/ner/eval.jsonl", root_->string());
  const std::string model = "model.path=" + model_for("ner_ptuning_v2_minilm");
  const fs::path run = train("ner_ptuning_v2_minilm", "ner_run",
                             "train.max_steps=6 train.micro_batch=16 train.lr=0.1 train.eval_every=3 " + data);
  std::vector<nlohmann::json> evals;
  for (const auto& m : metrics(run))
    if (m.contains("split")) evals.push_back(m);
  ASSERT_EQ(evals.size(), 2u);
  for (const char* key : {"accuracy", "macro_f1", "precision", "recall", "f1", "tokens"})
    EXPECT_TRUE(evals.back().contains(key)) << key << " in " << evals.back().dump();

  // eval on the final adapter reproduces the trainer's last evaluation.
  const std::string adapter = (run / "adapter").string();
  const CliRun e = ptune(fmt::format("eval {} {} {} --adapter {}", recipe, model, data, adapter));
  ASSERT_EQ(e.status, 0) << e.output;
  const nlohmann::json result = nlohmann::json::parse(e.output.substr(e.output.find('{')));
  for (const char* key : {"accuracy", "f1", "precision", "recall"})
    EXPECT_DOUBLE_EQ(result[key].get<double>(), evals.back()[key].get<double>()) << key;
  const auto config = io::read_json_file(run / "adapter/adapter_config.json");
  EXPECT_EQ(config["task_type"], "TOKEN_CLS");
  EXPECT_EQ(config["modules_to_save"], nlohmann::json({"classifier"}));

  // predict: one tag per word; their accuracy against the gold tags is eval's.
  const fs::path predictions = *root_ / "ner_predictions.jsonl";
  const CliRun p = ptune(fmt::format("predict {} {} --adapter {} --input {}/ner/eval.jsonl --output {}", recipe, model,
                                     adapter, root_->string(), predictions.string()));
  ASSERT_EQ(p.status, 0) << p.output;
  std::ifstream in(predictions), gold(*root_ / "ner/eval.jsonl");
  int64_t lines = 0, words = 0, correct = 0;
  for (std::string line, g; std::getline(in, line) && std::getline(gold, g); ++lines) {
    const auto tags = nlohmann::json::parse(line)["tags"], want = nlohmann::json::parse(g)["ner_tags"];
    ASSERT_EQ(tags.size(), want.size()) << line;
    for (size_t i = 0; i < tags.size(); ++i, ++words) correct += tags[i] == want[i];
  }
  EXPECT_EQ(lines, 100);
  EXPECT_EQ(words, result["tokens"].get<int64_t>());  // every word kept its first token (no truncation)
  EXPECT_NEAR(double(correct) / double(words), result["accuracy"].get<double>(), 1e-12);
}

// predict labels data that has no labels (and a verbalizer task needs no
// training data to find its label words): the same predictions as for the
// labelled file, for classification, the verbalizer and token tagging.
TEST_F(TrainCli, PredictNeedsNoLabels) {
  const auto strip = [&](const fs::path& from, const char* field, const std::string& name) {
    const fs::path to = *root_ / name;
    std::ifstream in(from);
    std::ofstream out(to);
    for (std::string line; std::getline(in, line);) {
      nlohmann::json j = nlohmann::json::parse(line);
      j.erase(field);
      out << j.dump() << "\n";
    }
    return to;
  };
  const auto predict = [&](const std::string& args, const fs::path& input, const char* key) {
    const fs::path out = *root_ / ("predict_" + input.filename().string());
    const CliRun p = ptune(fmt::format("predict {} --input {} --output {}", args, input.string(), out.string()));
    EXPECT_EQ(p.status, 0) << p.output;
    std::vector<nlohmann::json> got;
    std::ifstream in(out);
    for (std::string line; std::getline(in, line);) got.push_back(nlohmann::json::parse(line)[key]);
    return got;
  };
  const fs::path eval = fs::path(PTUNE_SOURCE_DIR) / "recipes/data/quickstart/eval.jsonl";
  const fs::path unlabelled = strip(eval, "label", "quickstart_unlabelled.jsonl");
  const std::string model = "model.path=" + model_for("quickstart");
  const std::string verbalizer =
      "method.name=prompt-tuning task.kind=verbalizer 'data.text={sentence} it was [MASK] .' "
      "'data.verbalizer={negative: bad, positive: good}'";
  for (const std::string& task : {std::string(), verbalizer}) {
    SCOPED_TRACE(task.empty() ? "classification" : "verbalizer");
    const fs::path run = train("quickstart", task.empty() ? "predict_cls" : "predict_verb",
                               "train.max_steps=3 data.eval= " + task);
    const std::string args =
        fmt::format("recipes/quickstart.yaml {} {} --adapter {}", model, task, (run / "adapter").string());
    const auto want = predict(args, eval, "prediction"), got = predict(args, unlabelled, "prediction");
    ASSERT_EQ(want.size(), 400u);
    EXPECT_EQ(got, want);
  }

  const fs::path ner = *root_ / "ner/eval.jsonl";
  const fs::path untagged = strip(ner, "ner_tags", "ner_untagged.jsonl");
  const fs::path run = train("ner_ptuning_v2_minilm", "predict_ner",
                             fmt::format("train.max_steps=3 data.train={} data.eval=", (*root_ / "ner/train.jsonl").string()));
  const std::string args = fmt::format("recipes/ner_ptuning_v2_minilm.yaml model.path={} --adapter {}",
                                       model_for("ner_ptuning_v2_minilm"), (run / "adapter").string());
  const auto want = predict(args, ner, "tags"), got = predict(args, untagged, "tags");
  ASSERT_EQ(want.size(), 100u);
  EXPECT_EQ(got, want);

  // label_all_tokens trains every sub-token; predict still writes one tag per word.
  const fs::path all = train("ner_ptuning_v2_minilm", "predict_ner_all",
                             fmt::format("train.max_steps=3 data.label_all_tokens=true data.train={} data.eval=",
                                         (*root_ / "ner/train.jsonl").string()));
  const auto every = predict(fmt::format("recipes/ner_ptuning_v2_minilm.yaml model.path={} data.label_all_tokens=true "
                                         "--adapter {}",
                                         model_for("ner_ptuning_v2_minilm"), (all / "adapter").string()),
                             untagged, "tags");
  ASSERT_EQ(every.size(), want.size());
  for (size_t i = 0; i < every.size(); ++i) EXPECT_EQ(every[i].size(), want[i].size()) << i;

  // Raw sentences in a CSV column: the words are the text's whitespace-separated pieces.
  const fs::path csv = *root_ / "ner_raw.csv";
  {
    std::ifstream in(ner);
    std::ofstream out(csv);
    out << "tokens\n";
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json record = nlohmann::json::parse(line);
      std::string sentence;
      for (const auto& w : record["tokens"]) sentence += (sentence.empty() ? "" : " ") + w.get<std::string>();
      std::string quoted = "\"";
      for (char c : sentence) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      out << quoted << "\"\n";
    }
  }
  EXPECT_EQ(predict(args, csv, "tags"), want);
}

TEST_F(TrainCli, BadInputNamesKeyFileLineAndLabel) {
  const std::string model = "model.path=" + model_for("quickstart");
  CliRun r = ptune("train recipes/quickstart.yaml train.learnig_rate=0.1 " + model);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("unknown key 'train.learnig_rate'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'train.lr'"), std::string::npos) << r.output;

  const fs::path bad = *root_ / "bad.jsonl";
  std::ofstream(bad) << "{\"sentence\": \"the film is good .\", \"label\": \"positive\"}\n"
                     << "{\"sentence\": \"the film is bad .\", \"label\": \"negative\"\n";
  r = ptune(fmt::format("train recipes/quickstart.yaml {} data.train={}", model, bad.string()));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find(bad.string() + ":2"), std::string::npos) << r.output;

  std::ofstream(bad) << "{\"sentence\": \"the film is good .\", \"label\": \"positive\"}\n"
                     << "{\"sentence\": \"the film is so-so .\", \"label\": \"neutral\"}\n";
  r = ptune(fmt::format("train recipes/quickstart.yaml {} data.train={}", model, bad.string()));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find(bad.string() + ":2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'neutral'"), std::string::npos) << r.output;

  // A loss that diverges stops the run with a clear message.
  r = ptune("train recipes/quickstart.yaml " + model + " train.lr=1e30 train.max_grad_norm=0 train.max_steps=20 " +
            "train.output_dir=" + (*root_ / "nan").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("the loss became"), std::string::npos) << r.output;

  // ptune bench checks its options before the (slow) random init.
  r = ptune("bench --steps 0");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--steps must be"), std::string::npos) << r.output;
  r = ptune("bench --device tpu");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--device is cpu or cuda, not 'tpu'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ptune
