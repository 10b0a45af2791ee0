// Recipe: YAML → typed options, overrides, errors naming FILE:LINE and the
// key, and the dump that reads back to the same options. Expected values
// are written out by hand here, independently of the schema table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include "framework/core/error.h"
#include "framework/recipe/recipe.h"
#include "expect_error.h"

namespace ptune::recipe {
namespace {

using peft::Encoder, peft::Placement, peft::PromptInit, peft::Method;
using testing::expect_error;

Recipe parse(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return parse_recipe(yaml, "r.yaml", overrides);
}

void expect_error_in(const std::string& yaml, std::initializer_list<std::string> needles,
                     const std::vector<std::string>& overrides = {}) {
  expect_error([&] { parse(yaml, overrides); }, needles);
}

// Every field, compared one by one (the option structs have no operator==).
void expect_same(const Recipe& a, const Recipe& b) {
  EXPECT_EQ(a.model.path, b.model.path);
  const peft::PromptConfig &m = a.method, &n = b.method;
  EXPECT_EQ(m.method, n.method);
  EXPECT_EQ(m.num_virtual_tokens, n.num_virtual_tokens);
  EXPECT_EQ(m.placement, n.placement);
  EXPECT_EQ(m.encoder, n.encoder);
  EXPECT_EQ(m.encoder_hidden, n.encoder_hidden);
  EXPECT_EQ(m.encoder_layers, n.encoder_layers);
  EXPECT_EQ(m.encoder_dropout, n.encoder_dropout);
  EXPECT_EQ(m.init, n.init);
  EXPECT_EQ(m.init_text, n.init_text);
  EXPECT_EQ(m.prefix_dropout, n.prefix_dropout);
  EXPECT_EQ(m.layers, n.layers);
  EXPECT_EQ(a.task.kind, b.task.kind);
  EXPECT_EQ(a.task.classifier_dropout, b.task.classifier_dropout);
  const data::DataOptions &d = a.data, &e = b.data;
  EXPECT_EQ(d.train, e.train);
  EXPECT_EQ(d.eval, e.eval);
  EXPECT_EQ(d.format, e.format);
  EXPECT_EQ(d.text, e.text);
  EXPECT_EQ(d.text_pair, e.text_pair);
  EXPECT_EQ(d.label_field, e.label_field);
  EXPECT_EQ(d.labels, e.labels);
  EXPECT_EQ(d.verbalizer, e.verbalizer);
  EXPECT_EQ(d.answer_field, e.answer_field);
  EXPECT_EQ(d.max_length, e.max_length);
  EXPECT_EQ(d.truncation, e.truncation);
  EXPECT_EQ(d.bucket_by_length, e.bucket_by_length);
  const train::TrainOptions &t = a.train, &u = b.train;
  EXPECT_EQ(t.seed, u.seed);
  EXPECT_EQ(t.epochs, u.epochs);
  EXPECT_EQ(t.max_steps, u.max_steps);
  EXPECT_EQ(t.micro_batch, u.micro_batch);
  EXPECT_EQ(t.grad_accum, u.grad_accum);
  EXPECT_EQ(t.eval_batch, u.eval_batch);
  EXPECT_EQ(t.optimizer.lr, u.optimizer.lr);
  EXPECT_EQ(t.optimizer.weight_decay, u.optimizer.weight_decay);
  EXPECT_EQ(t.optimizer.beta1, u.optimizer.beta1);
  EXPECT_EQ(t.optimizer.beta2, u.optimizer.beta2);
  EXPECT_EQ(t.optimizer.eps, u.optimizer.eps);
  EXPECT_EQ(t.schedule, u.schedule);
  EXPECT_EQ(t.warmup_steps, u.warmup_steps);
  EXPECT_EQ(t.warmup_ratio, u.warmup_ratio);
  EXPECT_EQ(t.max_grad_norm, u.max_grad_norm);
  EXPECT_EQ(t.log_every, u.log_every);
  EXPECT_EQ(t.eval_every, u.eval_every);
  EXPECT_EQ(t.save_every, u.save_every);
  EXPECT_EQ(t.output_dir, u.output_dir);
  EXPECT_EQ(t.metric_for_best, u.metric_for_best);
}

// Every key set to a non-default value; strings that need YAML quoting.
const char* const kFull = R"(# RTE with a verbalizer
model:
  path: /models/bert base
method:
  name: p-tuning-v2
  num_virtual_tokens: 16
  placement: kv-prefix
  encoder: mlp
  encoder_hidden: 64
  encoder_layers: 3
  encoder_dropout: 0.25
  init: text
  init_text: "Is it true?"
  prefix_dropout: 0.1
  layers: [10, 11, 3]
task:
  kind: verbalizer
  classifier_dropout: 0.3
data:
  train: data/rte/train.jsonl
  eval: data/rte/val.jsonl
  format: jsonl
  text: "{premise} Question: {hypothesis}? [P*4] [MASK]."
  text_pair: "~"
  label_field: gold
  labels: [entailment, not_entailment]
  verbalizer: {entailment: " yes", not_entailment: "null"}
  answer_field: answer
  max_length: 256
  truncation: only_first
  bucket_by_length: false
train:
  seed: 18446744073709551615
  epochs: 3
  max_steps: 1000
  micro_batch: 16
  grad_accum: 4
  eval_batch: 64
  lr: 7e-3
  weight_decay: 0.01
  beta1: 0.8
  beta2: 0.98
  eps: 1e-6
  schedule: cosine
  warmup_steps: 100
  warmup_ratio: 0.06
  max_grad_norm: 0.5
  log_every: 5
  eval_every: 200
  save_every: 400
  output_dir: runs/rte
  metric_for_best: macro_f1
)";

TEST(Recipe, FullRecipeParsesEveryKey) {
  const Recipe r = parse(kFull);
  EXPECT_EQ(r.model.path, "/models/bert base");
  EXPECT_EQ(r.method.method, Method::kPTuningV2);
  EXPECT_EQ(r.method.num_virtual_tokens, 16);
  EXPECT_EQ(r.method.placement, Placement::kKvPrefix);
  EXPECT_EQ(r.method.encoder, Encoder::kMlp);
  EXPECT_EQ(r.method.encoder_hidden, 64);
  EXPECT_EQ(r.method.encoder_layers, 3);
  EXPECT_EQ(r.method.encoder_dropout, 0.25f);
  EXPECT_EQ(r.method.init, PromptInit::kText);
  EXPECT_EQ(r.method.init_text, "Is it true?");
  EXPECT_EQ(r.method.prefix_dropout, 0.1f);
  EXPECT_EQ(r.method.layers, (std::vector<int64_t>{10, 11, 3}));
  EXPECT_EQ(r.task.kind, model::TaskKind::kVerbalizer);
  EXPECT_EQ(r.task.classifier_dropout, 0.3f);
  EXPECT_EQ(r.data.train, "data/rte/train.jsonl");
  EXPECT_EQ(r.data.eval, "data/rte/val.jsonl");
  EXPECT_EQ(r.data.format, data::Format::kJsonl);
  EXPECT_EQ(r.data.text, "{premise} Question: {hypothesis}? [P*4] [MASK].");
  EXPECT_EQ(r.data.text_pair, "~");  // quoted: a string, not null
  EXPECT_EQ(r.data.label_field, "gold");
  EXPECT_EQ(r.data.labels, (std::vector<std::string>{"entailment", "not_entailment"}));
  EXPECT_EQ(r.data.verbalizer,
            (std::map<std::string, std::string>{{"entailment", " yes"}, {"not_entailment", "null"}}));
  EXPECT_EQ(r.data.answer_field, "answer");
  EXPECT_EQ(r.data.max_length, 256);
  EXPECT_EQ(r.data.truncation, data::Truncation::kOnlyFirst);
  EXPECT_FALSE(r.data.bucket_by_length);
  EXPECT_EQ(r.train.seed, 18446744073709551615ull);
  EXPECT_EQ(r.train.epochs, 3);
  EXPECT_EQ(r.train.max_steps, 1000);
  EXPECT_EQ(r.train.micro_batch, 16);
  EXPECT_EQ(r.train.grad_accum, 4);
  EXPECT_EQ(r.train.eval_batch, 64);
  EXPECT_EQ(r.train.optimizer.lr, 7e-3f);
  EXPECT_EQ(r.train.optimizer.weight_decay, 0.01f);
  EXPECT_EQ(r.train.optimizer.beta1, 0.8f);
  EXPECT_EQ(r.train.optimizer.beta2, 0.98f);
  EXPECT_EQ(r.train.optimizer.eps, 1e-6f);
  EXPECT_EQ(r.train.schedule, train::Schedule::kCosine);
  EXPECT_EQ(r.train.warmup_steps, 100);
  EXPECT_EQ(r.train.warmup_ratio, 0.06f);
  EXPECT_EQ(r.train.max_grad_norm, 0.5f);
  EXPECT_EQ(r.train.log_every, 5);
  EXPECT_EQ(r.train.eval_every, 200);
  EXPECT_EQ(r.train.save_every, 400);
  EXPECT_EQ(r.train.output_dir, "runs/rte");
  EXPECT_EQ(r.train.metric_for_best, "macro_f1");
}

TEST(Recipe, DumpReadsBackToTheSameRecipe) {
  const Recipe r = parse(kFull);
  const std::string dumped = dump_recipe(r);
  const Recipe again = parse_recipe(dumped, "dumped.yaml");
  expect_same(r, again);
  EXPECT_EQ(dump_recipe(again), dumped);

  // A float with no short decimal form survives bit-exactly.
  const Recipe odd = parse(std::string(kFull), {"train.lr=0.1234567891", "train.eps=3.3e-38"});
  expect_same(odd, parse_recipe(dump_recipe(odd), "dumped.yaml"));
}

TEST(Recipe, DumpHoldsEveryKeyIncludingDefaults) {
  const Recipe r = parse("model: {path: m}\nmethod: {name: prompt-tuning}\ndata: {labels: [0, 1]}\n");
  const std::string dumped = dump_recipe(r);
  for (const char* key :
       {"path:", "name: prompt-tuning", "num_virtual_tokens: 20", "placement: input", "encoder: none",
        "encoder_hidden: 0", "encoder_layers: 2", "encoder_dropout: 0", "init: random", "init_text: \"\"",
        "prefix_dropout: 0", "layers: all", "kind: classification", "classifier_dropout: 0.1", "train: \"\"",
        "eval: \"\"", "format: auto", "text: \"{sentence}\"", "text_pair: \"\"", "label_field: label",
        "labels: [0, 1]", "verbalizer: {}", "answer_field: \"\"", "max_length: 128", "truncation: longest_first",
        "bucket_by_length: true", "seed: 42", "epochs: 1", "max_steps: 0", "micro_batch: 8", "grad_accum: 1",
        "eval_batch: 32", "lr: 0.005", "weight_decay: 0", "beta1: 0.9", "beta2: 0.999", "eps: 1e-08",
        "schedule: linear", "warmup_steps: 0", "warmup_ratio: 0", "max_grad_norm: 1", "log_every: 10",
        "eval_every: 0", "save_every: 0", "output_dir: runs/ptune", "metric_for_best: accuracy"})
    EXPECT_NE(dumped.find(key), std::string::npos) << key << " not in:\n" << dumped;
  EXPECT_EQ(dumped.find("projection"), std::string::npos) << "a shorthand, not a field";
  expect_same(r, parse_recipe(dumped, "dumped.yaml"));
}

TEST(Recipe, MethodPresetsThenExplicitKeysWin) {
  const std::string base = "model: {path: m}\ndata: {labels: [a, b]}\n";
  Recipe r = parse(base + "method: {name: prefix-tuning}\n");
  EXPECT_EQ(r.method.placement, Placement::kKvPrefix);
  EXPECT_EQ(r.method.encoder, Encoder::kPrefixMlp);

  r = parse(base + "method: {name: p-tuning-v2}\n");
  EXPECT_EQ(r.method.placement, Placement::kKvPrefix);
  EXPECT_EQ(r.method.encoder, Encoder::kNone);

  r = parse(base + "method: {name: p-tuning}\n");
  EXPECT_EQ(r.method.placement, Placement::kInput);
  EXPECT_EQ(r.method.encoder, Encoder::kLstm);

  // Explicit keys override the preset, whatever their order in the file.
  r = parse(base + "method:\n  encoder: none\n  name: prefix-tuning\n");
  EXPECT_EQ(r.method.encoder, Encoder::kNone);
  EXPECT_EQ(r.method.placement, Placement::kKvPrefix);

  // projection is the shorthand for the prefix encoder.
  r = parse(base + "method: {name: p-tuning-v2, projection: true}\n");
  EXPECT_EQ(r.method.encoder, Encoder::kPrefixMlp);
  r = parse(base + "method: {name: prefix-tuning, projection: false}\n");
  EXPECT_EQ(r.method.encoder, Encoder::kNone);

  // A method name from the command line applies its preset, and the
  // file's explicit method keys still override it.
  r = parse(base + "method: {name: prompt-tuning, num_virtual_tokens: 7}\n", {"method.name=prefix-tuning"});
  EXPECT_EQ(r.method.method, Method::kPrefixTuning);
  EXPECT_EQ(r.method.encoder, Encoder::kPrefixMlp);
  EXPECT_EQ(r.method.num_virtual_tokens, 7);
}

TEST(Recipe, OverridesOfEveryType) {
  const std::string base =
      "model: {path: m}\nmethod: {name: p-tuning-v2}\ndata: {labels: [a, b]}\ntrain: {micro_batch: 4, lr: 0.1}\n";
  const Recipe r = parse(base, {
                                   "train.micro_batch=32",                  // int
                                   "train.lr=1e-3",                         // float
                                   "data.bucket_by_length=no",              // bool
                                   "train.schedule=constant",               // enum
                                   "method.layers=[10,11]",                 // list of ints
                                   "data.labels=[entailment,not_entailment]",  // list of strings
                                   "task.kind=verbalizer",                  // enum
                                   "data.verbalizer={entailment: yes, not_entailment: no}",  // map
                                   "data.text={premise} [P*2] It was [MASK].",  // verbatim, no YAML quoting
                                   "data.eval=",                            // empty string
                               });
  EXPECT_EQ(r.train.micro_batch, 32);
  EXPECT_EQ(r.train.optimizer.lr, 1e-3f);
  EXPECT_FALSE(r.data.bucket_by_length);
  EXPECT_EQ(r.train.schedule, train::Schedule::kConstant);
  EXPECT_EQ(r.method.layers, (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(r.data.labels, (std::vector<std::string>{"entailment", "not_entailment"}));
  EXPECT_EQ(r.task.kind, model::TaskKind::kVerbalizer);
  EXPECT_EQ(r.data.verbalizer,
            (std::map<std::string, std::string>{{"entailment", "yes"}, {"not_entailment", "no"}}));
  EXPECT_EQ(r.data.text, "{premise} [P*2] It was [MASK].");
  EXPECT_EQ(r.data.eval, "");

  // The last override of a key wins; `all` resets the layer list.
  const Recipe s = parse(base, {"method.layers=[1]", "method.layers=all", "train.epochs=2", "train.epochs=5"});
  EXPECT_TRUE(s.method.layers.empty());
  EXPECT_EQ(s.train.epochs, 5);
}

TEST(Recipe, YamlIntegersAreStringLabels) {
  const Recipe r = parse("model: {path: m}\nmethod: {name: prompt-tuning}\ndata:\n  labels:\n    - 0\n    - 1\n");
  EXPECT_EQ(r.data.labels, (std::vector<std::string>{"0", "1"}));
}

TEST(Recipe, RelativePathsAreKeptAsWritten) {
  const auto dir = std::filesystem::temp_directory_path() / ("ptune_recipe_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "r.yaml").string();
  std::ofstream(path) << "model: {path: models/bert}\nmethod: {name: prompt-tuning}\n"
                         "data: {train: data/train.jsonl, labels: [a]}\n";
  const Recipe r = load_recipe(path, {"train.output_dir=out"});
  EXPECT_EQ(r.model.path, "models/bert");
  EXPECT_EQ(r.data.train, "data/train.jsonl");
  EXPECT_EQ(r.train.output_dir, "out");
  std::filesystem::remove_all(dir);
  expect_error([&] { load_recipe(path); }, {path});
}

// ---- errors ------------------------------------------------------------------

const std::string kHead = "model:\n  path: m\nmethod:\n  name: p-tuning-v2\ndata:\n  labels: [a, b]\n";  // 6 lines

TEST(RecipeErrors, UnknownKeySuggestsTheNearest) {
  expect_error_in(kHead + "train:\n  micro_batch: 8\n  learnig_rate: 0.1\n",
                  {"r.yaml:9: unknown key 'train.learnig_rate' (did you mean 'train.lr'?)"});
  expect_error_in(kHead + "train:\n  epoch: 3\n", {"r.yaml:8: unknown key 'train.epoch' (did you mean 'train.epochs'?)"});
  expect_error_in(kHead + "train:\n  per_device_train_batch_size: 3\n",
                  {"r.yaml:8:", "(did you mean 'train.micro_batch'?)"});
  // A key of another section is found there.
  expect_error_in(kHead + "train:\n  max_length: 64\n", {"r.yaml:8:", "(did you mean 'data.max_length'?)"});
  // Nothing close: the section's keys are listed.
  expect_error_in(kHead + "task:\n  zzzzzzzzzzzz: 1\n", {"r.yaml:8: unknown key 'task.zzzzzzzzzzzz' (keys of 'task': kind, classifier_dropout)"});
}

TEST(RecipeErrors, UnknownSectionSuggestsTheNearest) {
  expect_error_in(kHead + "trian:\n  lr: 0.1\n", {"r.yaml:7: unknown section 'trian' (did you mean 'train'?)"});
  expect_error_in(kHead + "optimizer:\n  lr: 0.1\n", {"r.yaml:7: unknown section 'optimizer' (sections: model, method, task, data, train)"});
}

TEST(RecipeErrors, WrongTypes) {
  expect_error_in(kHead + "train:\n  micro_batch: eight\n",
                  {"r.yaml:8: train.micro_batch: expected an integer, got 'eight'"});
  expect_error_in(kHead + "train:\n  micro_batch: 8.5\n", {"r.yaml:8: train.micro_batch: expected an integer, got '8.5'"});
  expect_error_in(kHead + "train:\n  lr: fast\n", {"r.yaml:8: train.lr: expected a number, got 'fast'"});
  expect_error_in(kHead + "train:\n  lr: [1]\n", {"r.yaml:8: train.lr: expected a number, got a list"});
  expect_error_in(kHead + "train:\n  seed: -1\n", {"r.yaml:8: train.seed: expected a non-negative integer, got '-1'"});
  expect_error_in(kHead + "  bucket_by_length: maybe\n", {"r.yaml:7: data.bucket_by_length: expected true or false, got 'maybe'"});
  expect_error_in("model:\n  path: {a: 1}\nmethod: {name: p-tuning-v2}\n", {"r.yaml:2: model.path: expected a string, got a map"});
  expect_error_in("model: {path: m}\nmethod:\n  name: p-tuning-v2\n  layers: [1, x]\n",
                  {"r.yaml:4: method.layers: expected an integer, got 'x'"});
  expect_error_in("model: {path: m}\nmethod:\n  name: p-tuning-v2\n  layers: some\n",
                  {"r.yaml:4: method.layers: expected 'all' or a list of layer indices, got 'some'"});
  expect_error_in(kHead + "  verbalizer: [a, b]\n", {"r.yaml:7: data.verbalizer: expected a map label: word, got a list"});
  expect_error_in("model: {path: m}\nmethod: {name: p-tuning-v2}\ndata:\n  labels: {a: 1}\n",
                  {"r.yaml:4: data.labels: expected a list of labels, got a map"});
  expect_error_in("model: m\n", {"r.yaml:1: section 'model' must be a map of keys, got 'm'"});
}

TEST(RecipeErrors, OutOfRange) {
  expect_error_in(kHead + "train:\n  lr: -1\n", {"r.yaml:8: train.lr must be > 0, got -1"});
  expect_error_in(kHead + "train:\n  lr: 0\n", {"r.yaml:8: train.lr must be > 0, got 0"});
  expect_error_in(kHead + "train:\n  lr: 1e-50\n", {"train.lr must be > 0, got 1e-50"});  // 0 as a float
  expect_error_in(kHead + "train:\n  micro_batch: 0\n", {"r.yaml:8: train.micro_batch must be >= 1, got 0"});
  expect_error_in(kHead + "train:\n  beta2: 1\n", {"r.yaml:8: train.beta2 must be in [0, 1), got 1"});
  expect_error_in(kHead + "train:\n  warmup_ratio: 1.5\n", {"train.warmup_ratio must be in [0, 1], got 1.5"});
  expect_error_in(kHead + "train:\n  weight_decay: -0.1\n", {"train.weight_decay must be >= 0, got -0.1"});
  expect_error_in(kHead + "train:\n  max_steps: -1\n", {"train.max_steps must be >= 0, got -1"});
  expect_error_in(kHead + "  max_length: 1\n", {"r.yaml:7: data.max_length must be >= 2, got 1"});
  expect_error_in("model: {path: m}\nmethod:\n  name: p-tuning-v2\n  num_virtual_tokens: 0\n",
                  {"r.yaml:4: method.num_virtual_tokens must be >= 1, got 0"});
  expect_error_in("model: {path: m}\nmethod:\n  name: p-tuning-v2\n  prefix_dropout: 1.0\n",
                  {"r.yaml:4: method.prefix_dropout must be in [0, 1)"});
  expect_error_in("model: {path: m}\nmethod:\n  name: p-tuning-v2\n  layers: [1, -2]\n",
                  {"r.yaml:4: method.layers: layer indices must be >= 0, got -2"});
  expect_error_in("model: {path: m}\nmethod:\n  name: p-tuning-v2\n  layers: [3, 3]\n",
                  {"r.yaml:4: method.layers: layer 3 is listed twice"});
  expect_error_in(kHead + "train:\n  lr: 1e50\n", {"r.yaml:8: train.lr: 1e50 is out of range for a 32-bit float"});
}

TEST(RecipeErrors, BadEnumListsTheValidValues) {
  expect_error_in("model: {path: m}\nmethod:\n  name: prefix-tunning\n",
                  {"r.yaml:3: method.name: expected one of prompt-tuning, prefix-tuning, p-tuning, p-tuning-v2, "
                   "got 'prefix-tunning' (did you mean 'prefix-tuning'?)"});
  expect_error_in(kHead + "train:\n  schedule: exp\n",
                  {"r.yaml:8: train.schedule: expected one of constant, linear, cosine, got 'exp'"});
  expect_error_in(kHead + "train:\n  metric_for_best: f2\n",
                  {"train.metric_for_best: expected one of accuracy, macro_f1, f1, loss, got 'f2'"});
  expect_error_in(kHead + "train:\n  metric_for_best: f1\n",
                  {"r.yaml:8: metric f1 is the entity-level F1 of token classification"});
  expect_error_in(kHead + "task:\n  kind: token-classification\ntrain:\n  metric_for_best: f1\n",
                  {"metric f1 scores entities, which needs IOB tags in data.labels"});
  expect_error_in(kHead + "task:\n  kind: regression\n",
                  {"task.kind: expected one of classification, verbalizer, causal-lm, token-classification, got 'regression'"});
}

TEST(RecipeErrors, MalformedYamlNamesFileAndLine) {
  expect_error_in("model:\n  path: m\nmethod: {name: p-tuning-v2\ntrain:\n  lr: 1\n", {"r.yaml:", "invalid YAML"});
  expect_error_in("model:\n  path: m\n   bad: indent\n", {"r.yaml:3:", "invalid YAML"});
  expect_error_in("- a\n- b\n", {"r.yaml:1: a recipe is a map of sections"});
}

TEST(RecipeErrors, MissingRequiredKeys) {
  expect_error_in("method: {name: p-tuning-v2}\ndata: {labels: [a]}\n", {"r.yaml: missing required key 'model.path'"});
  expect_error_in("model: {path: m}\ndata: {labels: [a]}\n", {"r.yaml: missing required key 'method.name'"});
  expect_error_in("", {"missing required key 'model.path'"});
}

TEST(RecipeErrors, DuplicateKey) {
  expect_error_in(kHead + "train:\n  lr: 0.1\n  lr: 0.2\n", {"r.yaml:9: key 'train.lr' is given twice (first at r.yaml:8)"});
}

TEST(RecipeErrors, CrossFieldChecks) {
  const std::string mp = "model: {path: m}\n";
  // Verbalizer words must cover the labels, and only the labels.
  expect_error_in(mp + "method: {name: prompt-tuning}\ntask: {kind: verbalizer}\n"
                       "data:\n  labels: [pos, neg]\n  verbalizer: {pos: great}\n",
                  {"r.yaml:6:", "data.verbalizer has no word for label 'neg'"});
  expect_error_in(mp + "method: {name: prompt-tuning}\ntask: {kind: verbalizer}\n"
                       "data:\n  labels: [pos]\n  verbalizer: {pos: great, neu: fine}\n",
                  {"data.verbalizer has a word for 'neu', which is not in data.labels"});
  expect_error_in(mp + "method: {name: prompt-tuning}\ntask:\n  kind: classification\n",
                  {"r.yaml:4: task.kind classification needs data.labels"});
  expect_error_in(mp + "method: {name: prompt-tuning}\n", {"r.yaml: task.kind classification needs data.labels"});
  expect_error_in(mp + "method: {name: prompt-tuning}\ntask:\n  kind: causal-lm\n",
                  {"r.yaml:4: task.kind causal-lm needs data.answer_field"});
  EXPECT_NO_THROW(parse(mp + "method: {name: prompt-tuning}\ntask: {kind: causal-lm}\ndata: {answer_field: a}\n"));
  expect_error_in(mp + "method:\n  name: prompt-tuning\n  layers: [1]\ndata: {labels: [a]}\n",
                  {"r.yaml:4: method.layers selects KV-prefix layers, but method.placement is input"});
  expect_error_in(mp + "method:\n  name: prompt-tuning\n  encoder: prefix-mlp\ndata: {labels: [a]}\n",
                  {"r.yaml:4: method.encoder prefix-mlp makes KV prefixes, but method.placement is input"});
  expect_error_in(mp + "method:\n  name: prefix-tuning\n  placement: input\ndata: {labels: [a]}\n",
                  {"r.yaml:4:", "method.encoder prefix-mlp makes KV prefixes, but method.placement is input"});
  expect_error_in(mp + "method:\n  name: prompt-tuning\n  init: text\ndata: {labels: [a]}\n",
                  {"r.yaml:4: method.init is text, so method.init_text must be set"});
  expect_error_in(mp + "method:\n  name: prefix-tuning\n  projection: true\n  encoder: none\ndata: {labels: [a]}\n",
                  {"r.yaml:4: set one of method.projection and method.encoder"});
  expect_error_in(mp + "method:\n  name: prompt-tuning\n  projection: false\ndata: {labels: [a]}\n",
                  {"r.yaml:4: method.projection applies to KV-prefix methods"});
  expect_error_in(mp + "method: {name: prompt-tuning}\ndata:\n  labels: [a, b, a]\n",
                  {"r.yaml:4: data.labels: label 'a' is listed twice"});
}

TEST(RecipeErrors, Overrides) {
  expect_error_in(kHead, {"command line override 'train.learnig_rate=1e-3': unknown key 'train.learnig_rate' "
                          "(did you mean 'train.lr'?)"},
                  {"train.learnig_rate=1e-3"});
  expect_error_in(kHead, {"command line override 'trian.lr=1': unknown section 'trian' (did you mean 'train'?)"},
                  {"trian.lr=1"});
  expect_error_in(kHead, {"command line override 'train.lr': expected section.key=value"}, {"train.lr"});
  expect_error_in(kHead, {"command line override 'lr=1': expected section.key=value"}, {"lr=1"});
  expect_error_in(kHead, {"command line override 'train.micro_batch=eight': train.micro_batch: expected an integer, "
                          "got 'eight'"},
                  {"train.micro_batch=eight"});
  expect_error_in(kHead, {"command line override 'train.lr=-1': train.lr must be > 0, got -1"}, {"train.lr=-1"});
  expect_error_in(kHead, {"command line override 'method.layers=[1,2': invalid YAML value"}, {"method.layers=[1,2"});
  // An override may supply a required key the file lacks.
  EXPECT_EQ(parse("method: {name: prompt-tuning}\ndata: {labels: [a]}\n", {"model.path=/m"}).model.path, "/m");
}

TEST(Recipe, KeysListTheSchema) {
  const std::vector<std::string> keys = recipe_keys();
  EXPECT_EQ(keys.front(), "model.path");
  EXPECT_EQ(keys[6], "method.name");
  EXPECT_EQ(keys.size(), 6u + 12u + 2u + 14u + 20u);  // model, method (+projection), task, data, train
}

TEST(Recipe, DeviceKeys) {
  const std::string base = "model: {path: m}\nmethod: {name: p-tuning-v2}\ndata: {labels: [a, b]}\n";
  const Recipe cpu = parse(base);
  EXPECT_EQ(cpu.model.device, DeviceKind::kCpu);
  EXPECT_EQ(cpu.model.dtype, ModelDType::kAuto);
  const Recipe gpu = parse(base, {"model.device=cuda", "model.dtype=f32"});
  EXPECT_EQ(gpu.model.device, DeviceKind::kCuda);
  EXPECT_EQ(gpu.model.dtype, ModelDType::kF32);
  expect_error_in(base, {"model.dtype bf16 needs model.device cuda"}, {"model.dtype=bf16"});
  expect_error_in(base, {"model.device", "tpu"}, {"model.device=tpu"});
}

TEST(Recipe, ShardKeys) {
  const std::string base = "model: {path: m}\nmethod: {name: p-tuning-v2}\ndata: {labels: [a, b]}\n";
  const Recipe d = parse(base);
  EXPECT_EQ(d.model.shard, ShardMode::kNone);
  EXPECT_FALSE(d.model.shard_keep_for_backward);
  const Recipe r = parse("model: {path: m, shard: node, shard_keep_for_backward: true}\n"
                         "method: {name: p-tuning-v2}\ndata: {labels: [a, b]}\n");
  EXPECT_EQ(r.model.shard, ShardMode::kNode);
  EXPECT_TRUE(r.model.shard_keep_for_backward);
  EXPECT_EQ(parse(base, {"model.shard=world"}).model.shard, ShardMode::kWorld);
  const Recipe again = parse_recipe(dump_recipe(r), "dumped.yaml");
  EXPECT_EQ(again.model.shard, ShardMode::kNode);
  EXPECT_TRUE(again.model.shard_keep_for_backward);
  expect_error_in("model:\n  path: m\n  shard: all\nmethod: {name: p-tuning-v2}\n",
                  {"r.yaml:3: model.shard: expected one of none, world, node, got 'all'"});
}

TEST(Recipe, GradientCheckpointingKey) {
  const std::string base = "model: {path: m}\nmethod: {name: p-tuning-v2}\ndata: {labels: [a, b]}\n";
  EXPECT_FALSE(parse(base).model.gradient_checkpointing);
  const Recipe r = parse(base, {"model.gradient_checkpointing=true"});
  EXPECT_TRUE(r.model.gradient_checkpointing);
  EXPECT_TRUE(parse_recipe(dump_recipe(r), "dumped.yaml").model.gradient_checkpointing);
  // transformers' other spelling is pointed at the key.
  expect_error_in("model: {path: m, activation_checkpointing: true}\nmethod: {name: p-tuning-v2}\n",
                  {"model.activation_checkpointing", "model.gradient_checkpointing"});
}

}  // namespace
}  // namespace ptune::recipe
