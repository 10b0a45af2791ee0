// One schema table (make_schema) drives everything here: YAML parsing,
// command-line overrides, validation, "did you mean" suggestions and the
// dump. A key is a Field: its section, name, the names people coming from
// transformers/peft type for it (for suggestions only), a setter that
// parses + range-checks a value into the Recipe, and a dumper.
//
// Precedence: the YAML and the overrides are first merged into one map
// "section.key" → value (an override replaces the YAML value), then the
// Recipe is built from defaults in schema order. method.name comes first in
// the schema, so its preset is applied before any other method key.
#include "framework/recipe/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/train/metrics.h"

namespace ptune::recipe {
namespace {

// A value for one key, with where it came from for error messages.
struct Value {
  YAML::Node node;
  std::string where;  // "FILE:LINE" or "command line override 'k=v'"
  std::string key;    // "section.key"
};

struct Field {
  Field(std::string section_, std::string name_, std::vector<std::string> hints_ = {})
      : section(std::move(section_)), name(std::move(name_)), hints(std::move(hints_)) {}

  std::string section, name;
  std::vector<std::string> hints;  // other spellings (HF TrainingArguments, peft): suggestions only
  bool required = false;
  bool container = false;  // a list or map: override values are parsed as YAML flow
  std::function<void(const Value&, Recipe&)> set;
  std::function<void(YAML::Emitter&, const Recipe&)> dump;  // empty: accepted but not dumped (shorthands)
  std::string full() const { return section + "." + name; }
};

using Entries = std::map<std::string, Value>;  // "section.key" → value

// ---- scalars ---------------------------------------------------------------

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return fmt::format("'{}'", node.Scalar());
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    default: return "nothing";
  }
}

// The text of a scalar value; anything else is a type error.
std::string scalar_text(const Value& v, const char* expected) {
  if (!v.node.IsScalar()) PTUNE_FAIL("{}: {}: expected {}, got {}", v.where, v.key, expected, describe(v.node));
  return v.node.Scalar();
}

// from_chars rejects a leading '+', which YAML allows.
std::string_view strip_plus(std::string_view s) {
  if (s.size() > 1 && s[0] == '+' && s[1] != '-') s.remove_prefix(1);
  return s;
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  text = strip_plus(text);
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

int64_t int_value(const Value& v, const std::string& text) {
  int64_t x = 0;
  if (!parse_number(text, x)) PTUNE_FAIL("{}: {}: expected an integer, got '{}'", v.where, v.key, text);
  return x;
}

int64_t int_value(const Value& v) { return int_value(v, scalar_text(v, "an integer")); }

bool bool_value(const Value& v) {
  std::string text = scalar_text(v, "true or false");
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  PTUNE_FAIL("{}: {}: expected true or false, got '{}'", v.where, v.key, v.node.Scalar());
}

// A string key may be left empty (`eval:`); a list or map is a type error.
std::string string_value(const Value& v) {
  if (v.node.IsNull()) return "";
  return scalar_text(v, "a string");
}

// Plain scalars that would read back as null are quoted; yaml-cpp quotes
// everything else that needs it ({…} templates, leading spaces, ':'…).
void emit_string(YAML::Emitter& out, const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    out << YAML::DoubleQuoted << s;
  else
    out << s;
}

// ---- suggestions -----------------------------------------------------------

std::string normalized(std::string s) {
  for (char& c : s) c = c == '-' ? '_' : char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The nearest of `candidates` to `word`, or "" when none is close enough to
// be a plausible typo. Candidates are (what to suggest, spelling, penalty).
struct Candidate {
  std::string suggest, spelling;
  size_t penalty = 0;
};

std::string nearest(const std::string& word, const std::vector<Candidate>& candidates) {
  const std::string w = normalized(word);
  size_t best = SIZE_MAX;
  std::string out;
  for (const Candidate& c : candidates) {
    const size_t d = edit_distance(w, normalized(c.spelling)) + c.penalty;
    if (d < best) best = d, out = c.suggest;
  }
  return best <= std::max<size_t>(2, w.size() / 3) ? out : "";
}

std::vector<std::string> section_names(const std::vector<Field>& schema) {
  std::vector<std::string> out;
  for (const Field& f : schema)
    if (std::find(out.begin(), out.end(), f.section) == out.end()) out.push_back(f.section);
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

[[noreturn]] void fail_unknown_section(const std::vector<Field>& schema, const std::string& where,
                                       const std::string& section) {
  std::vector<Candidate> candidates;
  for (const std::string& s : section_names(schema)) candidates.push_back({s, s, 0});
  const std::string guess = nearest(section, candidates);
  if (!guess.empty()) PTUNE_FAIL("{}: unknown section '{}' (did you mean '{}'?)", where, section, guess);
  PTUNE_FAIL("{}: unknown section '{}' (sections: {})", where, section, join(section_names(schema)));
}

// Every key of every section competes, one edit dearer outside the section
// the user wrote, so `train.max_length` suggests `data.max_length`.
[[noreturn]] void fail_unknown_key(const std::vector<Field>& schema, const std::string& where,
                                   const std::string& section, const std::string& key) {
  std::vector<Candidate> candidates;
  std::vector<std::string> valid;
  for (const Field& f : schema) {
    const size_t penalty = f.section == section ? 0 : 1;
    candidates.push_back({f.full(), f.name, penalty});
    for (const std::string& h : f.hints) candidates.push_back({f.full(), h, penalty});
    if (f.section == section) valid.push_back(f.name);
  }
  const std::string guess = nearest(key, candidates);
  if (!guess.empty()) PTUNE_FAIL("{}: unknown key '{}.{}' (did you mean '{}'?)", where, section, key, guess);
  PTUNE_FAIL("{}: unknown key '{}.{}' (keys of '{}': {})", where, section, key, section, join(valid));
}

// ---- field builders ----------------------------------------------------------
// `get` is a generic lambda `[](auto& r) -> auto& { return r.x.y; }`: one
// accessor serves the setter (Recipe&) and the dumper (const Recipe&).

template <class Get>
Field string_field(std::string section, std::string name, Get get, std::vector<std::string> hints = {}) {
  Field f{std::move(section), std::move(name), std::move(hints)};
  f.set = [get](const Value& v, Recipe& r) { get(r) = string_value(v); };
  f.dump = [get](YAML::Emitter& out, const Recipe& r) { emit_string(out, get(r)); };
  return f;
}

template <class Get>
Field int_field(std::string section, std::string name, Get get, int64_t min, std::vector<std::string> hints = {}) {
  Field f{std::move(section), std::move(name), std::move(hints)};
  f.set = [get, min](const Value& v, Recipe& r) {
    const std::string text = scalar_text(v, "an integer");
    const int64_t x = int_value(v, text);
    if (x < min) PTUNE_FAIL("{}: {} must be >= {}, got {}", v.where, v.key, min, text);
    get(r) = x;
  };
  f.dump = [get](YAML::Emitter& out, const Recipe& r) { out << fmt::to_string(get(r)); };
  return f;
}

enum class Bound : uint8_t { kPositive, kNonNegative, kUnitOpen /* [0, 1) */, kUnitClosed /* [0, 1] */ };

template <class Get>
Field float_field(std::string section, std::string name, Get get, Bound bound, std::vector<std::string> hints = {}) {
  Field f{std::move(section), std::move(name), std::move(hints)};
  f.set = [get, bound](const Value& v, Recipe& r) {
    const std::string text = scalar_text(v, "a number");
    float x = 0;  // parsed as float directly: the dump's shortest form then reads back bit-exact
    if (!parse_number(text, x)) {
      double wide = 0;  // from_chars rejects float under/overflow; tell that apart from a non-number
      if (!parse_number(text, wide) || !std::isfinite(wide))
        PTUNE_FAIL("{}: {}: expected a number, got '{}'", v.where, v.key, text);
      if (std::fabs(wide) >= 1) PTUNE_FAIL("{}: {}: {} is out of range for a 32-bit float", v.where, v.key, text);
      x = 0;  // underflow: the range check below decides
    }
    if (!std::isfinite(x)) PTUNE_FAIL("{}: {}: expected a number, got '{}'", v.where, v.key, text);
    switch (bound) {
      case Bound::kPositive:
        if (!(x > 0)) PTUNE_FAIL("{}: {} must be > 0, got {}", v.where, v.key, text);
        break;
      case Bound::kNonNegative:
        if (!(x >= 0)) PTUNE_FAIL("{}: {} must be >= 0, got {}", v.where, v.key, text);
        break;
      case Bound::kUnitOpen:
        if (!(x >= 0 && x < 1)) PTUNE_FAIL("{}: {} must be in [0, 1), got {}", v.where, v.key, text);
        break;
      case Bound::kUnitClosed:
        if (!(x >= 0 && x <= 1)) PTUNE_FAIL("{}: {} must be in [0, 1], got {}", v.where, v.key, text);
        break;
    }
    get(r) = x;
  };
  f.dump = [get](YAML::Emitter& out, const Recipe& r) { out << fmt::format("{}", get(r)); };
  return f;
}

template <class Get>
Field bool_field(std::string section, std::string name, Get get, std::vector<std::string> hints = {}) {
  Field f{std::move(section), std::move(name), std::move(hints)};
  f.set = [get](const Value& v, Recipe& r) { get(r) = bool_value(v); };
  f.dump = [get](YAML::Emitter& out, const Recipe& r) { out << (get(r) ? "true" : "false"); };
  return f;
}

// A key whose value is one of `names`; T is an enum or a string.
template <class T, class Get>
Field choice_field(std::string section, std::string name, Get get, std::vector<std::pair<T, std::string>> names,
                   std::vector<std::string> hints = {}) {
  Field f{std::move(section), std::move(name), std::move(hints)};
  f.set = [get, names](const Value& v, Recipe& r) {
    const std::string text = scalar_text(v, "a name");
    std::vector<std::string> valid;
    std::vector<Candidate> candidates;
    for (const auto& [value, n] : names) {
      if (n == text) {
        get(r) = value;
        return;
      }
      valid.push_back(n);
      candidates.push_back({n, n, 0});
    }
    const std::string guess = nearest(text, candidates);
    PTUNE_FAIL("{}: {}: expected one of {}, got '{}'{}", v.where, v.key, join(valid), text,
               guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess));
  };
  f.dump = [get, names](YAML::Emitter& out, const Recipe& r) {
    for (const auto& [value, n] : names)
      if (value == get(r)) {
        out << n;
        return;
      }
    PTUNE_FAIL("recipe: no name for the value of this key");
  };
  return f;
}

// ---- the schema --------------------------------------------------------------

std::vector<std::pair<peft::Method, std::string>> method_names() {
  std::vector<std::pair<peft::Method, std::string>> out;
  for (peft::Method m : {peft::Method::kPromptTuning, peft::Method::kPrefixTuning, peft::Method::kPTuning,
                         peft::Method::kPTuningV2})
    out.emplace_back(m, peft::method_name(m));
  return out;
}

// Built per call: the table is a constant, and no global holds it.
std::vector<Field> make_schema() {
  using peft::Encoder, peft::Placement, peft::PromptInit;
  std::vector<Field> s;

  Field path = string_field("model", "path", [](auto& r) -> auto& { return r.model.path; },
                            {"model_name_or_path", "name_or_path", "model_dir"});
  path.required = true;
  s.push_back(std::move(path));
  s.push_back(choice_field("model", "device", [](auto& r) -> auto& { return r.model.device; },
                           std::vector<std::pair<DeviceKind, std::string>>{{DeviceKind::kCpu, "cpu"},
                                                                           {DeviceKind::kCuda, "cuda"}},
                           {"accelerator"}));
  s.push_back(choice_field("model", "dtype", [](auto& r) -> auto& { return r.model.dtype; },
                           std::vector<std::pair<ModelDType, std::string>>{
                               {ModelDType::kAuto, "auto"}, {ModelDType::kF32, "f32"}, {ModelDType::kBF16, "bf16"}},
                           {"torch_dtype", "precision"}));
  s.push_back(choice_field("model", "shard", [](auto& r) -> auto& { return r.model.shard; },
                           std::vector<std::pair<ShardMode, std::string>>{
                               {ShardMode::kNone, "none"}, {ShardMode::kWorld, "world"}, {ShardMode::kNode, "node"}},
                           {"sharding", "zero", "fsdp"}));
  s.push_back(bool_field("model", "shard_keep_for_backward",
                         [](auto& r) -> auto& { return r.model.shard_keep_for_backward; }, {"keep_for_backward"}));
  s.push_back(bool_field("model", "gradient_checkpointing",
                         [](auto& r) -> auto& { return r.model.gradient_checkpointing; },
                         {"activation_checkpointing", "recompute", "checkpoint_activations"}));

  // method.name must stay the first method key: its preset is the base the
  // other method keys override.
  Field name = choice_field("method", "name", [](auto& r) -> auto& { return r.method.method; }, method_names(),
                            {"peft_type", "method", "type"});
  name.required = true;
  name.set = [choose = name.set](const Value& v, Recipe& r) {
    choose(v, r);
    r.method = peft::PromptConfig::preset(r.method.method);
  };
  s.push_back(std::move(name));
  s.push_back(int_field("method", "num_virtual_tokens", [](auto& r) -> auto& { return r.method.num_virtual_tokens; },
                        1, {"num_tokens", "prompt_length", "pre_seq_len", "n_tokens"}));
  s.push_back(choice_field("method", "placement", [](auto& r) -> auto& { return r.method.placement; },
                           std::vector<std::pair<Placement, std::string>>{{Placement::kInput, "input"},
                                                                          {Placement::kKvPrefix, "kv-prefix"}}));
  s.push_back(choice_field("method", "encoder", [](auto& r) -> auto& { return r.method.encoder; },
                           std::vector<std::pair<Encoder, std::string>>{{Encoder::kNone, "none"},
                                                                        {Encoder::kPrefixMlp, "prefix-mlp"},
                                                                        {Encoder::kMlp, "mlp"},
                                                                        {Encoder::kLstm, "lstm"}},
                           {"encoder_reparameterization_type", "reparameterization"}));
  s.push_back(int_field("method", "encoder_hidden", [](auto& r) -> auto& { return r.method.encoder_hidden; }, 0,
                        {"encoder_hidden_size", "prompt_hidden_size"}));
  s.push_back(int_field("method", "encoder_layers", [](auto& r) -> auto& { return r.method.encoder_layers; }, 1,
                        {"encoder_num_layers"}));
  s.push_back(float_field("method", "encoder_dropout", [](auto& r) -> auto& { return r.method.encoder_dropout; },
                          Bound::kUnitOpen));
  s.push_back(choice_field("method", "init", [](auto& r) -> auto& { return r.method.init; },
                           std::vector<std::pair<PromptInit, std::string>>{{PromptInit::kRandom, "random"},
                                                                           {PromptInit::kSampleVocab, "sample_vocab"},
                                                                           {PromptInit::kText, "text"}},
                           {"prompt_tuning_init"}));
  s.push_back(string_field("method", "init_text", [](auto& r) -> auto& { return r.method.init_text; },
                           {"prompt_tuning_init_text"}));
  s.push_back(float_field("method", "prefix_dropout", [](auto& r) -> auto& { return r.method.prefix_dropout; },
                          Bound::kUnitOpen));

  Field layers{"method", "layers", {"layers_to_transform", "prefix_layers"}};
  layers.container = true;
  layers.set = [](const Value& v, Recipe& r) {
    std::vector<int64_t>& out = r.method.layers;
    out.clear();
    if (v.node.IsScalar() && v.node.Scalar() == "all") return;
    if (!v.node.IsSequence())
      PTUNE_FAIL("{}: {}: expected 'all' or a list of layer indices, got {}", v.where, v.key, describe(v.node));
    for (const YAML::Node& item : v.node) {
      const Value element{item, v.where, v.key};
      const int64_t layer = int_value(element);
      if (layer < 0) PTUNE_FAIL("{}: {}: layer indices must be >= 0, got {}", v.where, v.key, layer);
      if (std::find(out.begin(), out.end(), layer) != out.end())
        PTUNE_FAIL("{}: {}: layer {} is listed twice", v.where, v.key, layer);
      out.push_back(layer);
    }
    if (out.empty()) PTUNE_FAIL("{}: {}: an empty list selects no layer (write 'all' for every layer)", v.where, v.key);
  };
  layers.dump = [](YAML::Emitter& out, const Recipe& r) {
    if (r.method.layers.empty()) {
      out << "all";
      return;
    }
    out << YAML::Flow << YAML::BeginSeq;
    for (int64_t l : r.method.layers) out << fmt::to_string(l);
    out << YAML::EndSeq;
  };
  s.push_back(std::move(layers));

  // Shorthand for prefix methods (peft's prefix_projection); encoder is what gets dumped.
  Field projection{"method", "projection", {"prefix_projection"}};
  projection.set = [](const Value& v, Recipe& r) {
    r.method.encoder = bool_value(v) ? Encoder::kPrefixMlp : Encoder::kNone;
  };
  s.push_back(std::move(projection));

  s.push_back(choice_field("task", "kind", [](auto& r) -> auto& { return r.task.kind; },
                           std::vector<std::pair<model::TaskKind, std::string>>{
                               {model::TaskKind::kClassification, "classification"},
                               {model::TaskKind::kVerbalizer, "verbalizer"},
                               {model::TaskKind::kCausalLm, "causal-lm"},
                               {model::TaskKind::kTokenClassification, "token-classification"}},
                           {"task_type", "type"}));
  s.push_back(float_field("task", "classifier_dropout", [](auto& r) -> auto& { return r.task.classifier_dropout; },
                          Bound::kUnitOpen));

  s.push_back(string_field("data", "train", [](auto& r) -> auto& { return r.data.train; },
                           {"train_file", "train_path"}));
  s.push_back(string_field("data", "eval", [](auto& r) -> auto& { return r.data.eval; },
                           {"eval_file", "validation_file", "eval_path"}));
  s.push_back(choice_field("data", "format", [](auto& r) -> auto& { return r.data.format; },
                           std::vector<std::pair<data::Format, std::string>>{{data::Format::kAuto, "auto"},
                                                                             {data::Format::kJsonl, "jsonl"},
                                                                             {data::Format::kCsv, "csv"},
                                                                             {data::Format::kTsv, "tsv"},
                                                                             {data::Format::kConll, "conll"}}));
  s.push_back(string_field("data", "text", [](auto& r) -> auto& { return r.data.text; }, {"template"}));
  s.push_back(string_field("data", "text_pair", [](auto& r) -> auto& { return r.data.text_pair; }));
  s.push_back(string_field("data", "label_field", [](auto& r) -> auto& { return r.data.label_field; },
                           {"label_column"}));
  s.push_back(string_field("data", "tokens_field", [](auto& r) -> auto& { return r.data.tokens_field; },
                           {"text_column_name", "words_field"}));

  Field labels{"data", "labels", {"label_names", "classes"}};
  labels.container = true;
  labels.set = [](const Value& v, Recipe& r) {
    if (!v.node.IsSequence())
      PTUNE_FAIL("{}: {}: expected a list of labels, got {}", v.where, v.key, describe(v.node));
    std::vector<std::string>& out = r.data.labels;
    out.clear();
    for (const YAML::Node& item : v.node) {
      // YAML 0/1 are labels "0"/"1": labels are compared as strings.
      const std::string label = scalar_text({item, v.where, v.key}, "a label");
      if (label.empty()) PTUNE_FAIL("{}: {}: a label may not be empty", v.where, v.key);
      if (std::find(out.begin(), out.end(), label) != out.end())
        PTUNE_FAIL("{}: {}: label '{}' is listed twice", v.where, v.key, label);
      out.push_back(label);
    }
  };
  labels.dump = [](YAML::Emitter& out, const Recipe& r) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const std::string& l : r.data.labels) emit_string(out, l);
    out << YAML::EndSeq;
  };
  s.push_back(std::move(labels));

  Field verbalizer{"data", "verbalizer", {"label_words", "verbalizers"}};
  verbalizer.container = true;
  verbalizer.set = [](const Value& v, Recipe& r) {
    r.data.verbalizer.clear();
    if (v.node.IsNull()) return;
    if (!v.node.IsMap())
      PTUNE_FAIL("{}: {}: expected a map label: word, got {}", v.where, v.key, describe(v.node));
    for (const auto& kv : v.node) {
      const std::string label = scalar_text({kv.first, v.where, v.key}, "a label");
      const std::string word = scalar_text({kv.second, v.where, v.key + "." + label}, "a word");
      if (word.empty()) PTUNE_FAIL("{}: {}.{}: the word may not be empty", v.where, v.key, label);
      if (!r.data.verbalizer.emplace(label, word).second)
        PTUNE_FAIL("{}: {}: label '{}' is given twice", v.where, v.key, label);
    }
  };
  verbalizer.dump = [](YAML::Emitter& out, const Recipe& r) {
    if (r.data.verbalizer.empty()) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
      return;
    }
    out << YAML::BeginMap;
    for (const auto& [label, word] : r.data.verbalizer) {
      out << YAML::Key;
      emit_string(out, label);
      out << YAML::Value;
      emit_string(out, word);
    }
    out << YAML::EndMap;
  };
  s.push_back(std::move(verbalizer));

  s.push_back(string_field("data", "answer_field", [](auto& r) -> auto& { return r.data.answer_field; },
                           {"answer_column", "target_field"}));
  s.push_back(int_field("data", "max_length", [](auto& r) -> auto& { return r.data.max_length; }, 2,
                        {"max_seq_length", "max_len"}));
  s.push_back(choice_field("data", "truncation", [](auto& r) -> auto& { return r.data.truncation; },
                           std::vector<std::pair<data::Truncation, std::string>>{
                               {data::Truncation::kLongestFirst, "longest_first"},
                               {data::Truncation::kOnlyFirst, "only_first"},
                               {data::Truncation::kOnlySecond, "only_second"}}));
  s.push_back(bool_field("data", "bucket_by_length", [](auto& r) -> auto& { return r.data.bucket_by_length; },
                         {"group_by_length"}));
  s.push_back(bool_field("data", "label_all_tokens", [](auto& r) -> auto& { return r.data.label_all_tokens; }));

  Field seed{"train", "seed", {"random_seed"}};
  seed.set = [](const Value& v, Recipe& r) {
    const std::string text = scalar_text(v, "a non-negative integer");
    if (!parse_number(text, r.train.seed))
      PTUNE_FAIL("{}: {}: expected a non-negative integer, got '{}'", v.where, v.key, text);
  };
  seed.dump = [](YAML::Emitter& out, const Recipe& r) { out << fmt::to_string(r.train.seed); };
  s.push_back(std::move(seed));
  s.push_back(int_field("train", "epochs", [](auto& r) -> auto& { return r.train.epochs; }, 1,
                        {"num_train_epochs", "num_epochs"}));
  s.push_back(int_field("train", "max_steps", [](auto& r) -> auto& { return r.train.max_steps; }, 0));
  s.push_back(int_field("train", "micro_batch", [](auto& r) -> auto& { return r.train.micro_batch; }, 1,
                        {"per_device_train_batch_size", "batch_size", "train_batch_size"}));
  s.push_back(int_field("train", "grad_accum", [](auto& r) -> auto& { return r.train.grad_accum; }, 1,
                        {"gradient_accumulation_steps", "accumulation_steps"}));
  s.push_back(int_field("train", "eval_batch", [](auto& r) -> auto& { return r.train.eval_batch; }, 1,
                        {"per_device_eval_batch_size", "eval_batch_size"}));
  s.push_back(float_field("train", "lr", [](auto& r) -> auto& { return r.train.optimizer.lr; }, Bound::kPositive,
                          {"learning_rate"}));
  s.push_back(float_field("train", "weight_decay", [](auto& r) -> auto& { return r.train.optimizer.weight_decay; },
                          Bound::kNonNegative));
  s.push_back(float_field("train", "beta1", [](auto& r) -> auto& { return r.train.optimizer.beta1; },
                          Bound::kUnitOpen, {"adam_beta1"}));
  s.push_back(float_field("train", "beta2", [](auto& r) -> auto& { return r.train.optimizer.beta2; },
                          Bound::kUnitOpen, {"adam_beta2"}));
  s.push_back(float_field("train", "eps", [](auto& r) -> auto& { return r.train.optimizer.eps; }, Bound::kPositive,
                          {"adam_epsilon", "epsilon"}));
  s.push_back(choice_field("train", "schedule", [](auto& r) -> auto& { return r.train.schedule; },
                           std::vector<std::pair<train::Schedule, std::string>>{
                               {train::Schedule::kConstant, "constant"},
                               {train::Schedule::kLinear, "linear"},
                               {train::Schedule::kCosine, "cosine"}},
                           {"lr_scheduler_type", "scheduler", "lr_schedule"}));
  s.push_back(int_field("train", "warmup_steps", [](auto& r) -> auto& { return r.train.warmup_steps; }, 0,
                        {"warmup"}));
  s.push_back(float_field("train", "warmup_ratio", [](auto& r) -> auto& { return r.train.warmup_ratio; },
                          Bound::kUnitClosed));
  s.push_back(float_field("train", "max_grad_norm", [](auto& r) -> auto& { return r.train.max_grad_norm; },
                          Bound::kNonNegative, {"grad_clip", "clip_grad_norm"}));
  s.push_back(int_field("train", "log_every", [](auto& r) -> auto& { return r.train.log_every; }, 1,
                        {"logging_steps"}));
  s.push_back(int_field("train", "eval_every", [](auto& r) -> auto& { return r.train.eval_every; }, 0,
                        {"eval_steps"}));
  s.push_back(int_field("train", "save_every", [](auto& r) -> auto& { return r.train.save_every; }, 0,
                        {"save_steps"}));
  s.push_back(string_field("train", "output_dir", [](auto& r) -> auto& { return r.train.output_dir; },
                           {"run_dir", "out_dir"}));
  s.push_back(choice_field("train", "metric_for_best", [](auto& r) -> auto& { return r.train.metric_for_best; },
                           std::vector<std::pair<std::string, std::string>>{
                               {"accuracy", "accuracy"}, {"macro_f1", "macro_f1"}, {"f1", "f1"}, {"loss", "loss"}},
                           {"metric_for_best_model"}));
  return s;
}

const Field* find_field(const std::vector<Field>& schema, const std::string& section, const std::string& name) {
  for (const Field& f : schema)
    if (f.section == section && f.name == name) return &f;
  return nullptr;
}

bool has_section(const std::vector<Field>& schema, const std::string& section) {
  return std::any_of(schema.begin(), schema.end(), [&](const Field& f) { return f.section == section; });
}

// ---- collecting values --------------------------------------------------------

std::string at(const std::string& origin, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? origin : fmt::format("{}:{}", origin, mark.line + 1);
}

void collect_yaml(const std::vector<Field>& schema, const YAML::Node& root, const std::string& origin,
                  Entries& entries) {
  if (root.IsNull()) return;
  if (!root.IsMap())
    PTUNE_FAIL("{}: a recipe is a map of sections ({}), got {}", at(origin, root), join(section_names(schema)),
               describe(root));
  std::set<std::string> seen_sections;
  for (const auto& section_kv : root) {
    const std::string where = at(origin, section_kv.first);
    if (!section_kv.first.IsScalar()) PTUNE_FAIL("{}: a section name must be a string", where);
    const std::string section = section_kv.first.Scalar();
    if (!has_section(schema, section)) fail_unknown_section(schema, where, section);
    if (!seen_sections.insert(section).second) PTUNE_FAIL("{}: section '{}' appears twice", where, section);
    const YAML::Node& body = section_kv.second;
    if (body.IsNull()) continue;
    if (!body.IsMap()) PTUNE_FAIL("{}: section '{}' must be a map of keys, got {}", where, section, describe(body));
    for (const auto& kv : body) {
      const std::string key_where = at(origin, kv.first);
      if (!kv.first.IsScalar()) PTUNE_FAIL("{}: a key of section '{}' must be a string", key_where, section);
      const std::string name = kv.first.Scalar();
      if (find_field(schema, section, name) == nullptr) fail_unknown_key(schema, key_where, section, name);
      const std::string key = section + "." + name;
      if (const auto it = entries.find(key); it != entries.end())
        PTUNE_FAIL("{}: key '{}' is given twice (first at {})", key_where, key, it->second.where);
      entries[key] = Value{kv.second, key_where, key};
    }
  }
}

void collect_override(const std::vector<Field>& schema, const std::string& text, Entries& entries) {
  const std::string where = fmt::format("command line override '{}'", text);
  const size_t eq = text.find('=');
  if (eq == std::string::npos) PTUNE_FAIL("{}: expected section.key=value (e.g. train.lr=1e-3)", where);
  const std::string key = text.substr(0, eq);
  const size_t dot = key.find('.');
  if (dot == std::string::npos) PTUNE_FAIL("{}: expected section.key=value (e.g. train.lr=1e-3)", where);
  const std::string section = key.substr(0, dot), name = key.substr(dot + 1);
  if (!has_section(schema, section)) fail_unknown_section(schema, where, section);
  const Field* field = find_field(schema, section, name);
  if (field == nullptr) fail_unknown_key(schema, where, section, name);
  const std::string value = text.substr(eq + 1);
  YAML::Node node;
  if (field->container) {
    try {
      node = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      PTUNE_FAIL("{}: invalid YAML value: {}", where, e.msg);
    }
  } else {
    node = YAML::Node(value);  // verbatim: the shell already removed any quotes
  }
  entries[key] = Value{node, where, key};
}

// ---- cross-field checks ---------------------------------------------------------

void check_consistency(const Recipe& r, const Entries& entries, const std::string& origin) {
  // Where to point: the first of `keys` the user wrote, else the file.
  const auto where = [&](std::initializer_list<const char*> keys) {
    for (const char* k : keys)
      if (const auto it = entries.find(k); it != entries.end()) return it->second.where;
    return origin;
  };
  const peft::PromptConfig& m = r.method;
  const bool input = m.placement == peft::Placement::kInput;

  if (r.model.dtype == ModelDType::kBF16 && r.model.device == DeviceKind::kCpu)
    PTUNE_FAIL("{}: model.dtype bf16 needs model.device cuda (the CPU computes in f32)",
               where({"model.dtype", "model.device"}));

  if (entries.count("method.projection") && entries.count("method.encoder"))
    PTUNE_FAIL("{}: set one of method.projection and method.encoder, not both",
               where({"method.projection"}));
  if (entries.count("method.projection") && input)
    PTUNE_FAIL("{}: method.projection applies to KV-prefix methods, but method.placement is input",
               where({"method.projection"}));
  if (m.encoder == peft::Encoder::kPrefixMlp && input)
    PTUNE_FAIL("{}: method.encoder prefix-mlp makes KV prefixes, but method.placement is input",
               where({"method.encoder", "method.placement", "method.name"}));
  if (!m.layers.empty() && input)
    PTUNE_FAIL("{}: method.layers selects KV-prefix layers, but method.placement is input",
               where({"method.layers", "method.placement"}));
  if (m.init == peft::PromptInit::kText && m.init_text.empty())
    PTUNE_FAIL("{}: method.init is text, so method.init_text must be set", where({"method.init_text", "method.init"}));

  const data::DataOptions& d = r.data;
  switch (r.task.kind) {
    case model::TaskKind::kClassification:
    case model::TaskKind::kVerbalizer:
    case model::TaskKind::kTokenClassification:
      if (d.labels.empty())
        PTUNE_FAIL("{}: task.kind {} needs data.labels (the label set, in class order)",
                   where({"data.labels", "task.kind"}),
                   r.task.kind == model::TaskKind::kVerbalizer ? "verbalizer"
                   : r.task.kind == model::TaskKind::kClassification ? "classification"
                                                                     : "token-classification");
      break;
    case model::TaskKind::kCausalLm:
      if (d.answer_field.empty())
        PTUNE_FAIL("{}: task.kind causal-lm needs data.answer_field (the field holding the answer text)",
                   where({"data.answer_field", "task.kind"}));
      break;
  }
  if (r.task.kind == model::TaskKind::kTokenClassification) {
    if (!d.text_pair.empty())
      PTUNE_FAIL("{}: task.kind token-classification reads the words of data.tokens_field; data.text_pair does not "
                 "apply", where({"data.text_pair", "task.kind"}));
  }
  if (r.train.metric_for_best == "f1" && r.task.kind != model::TaskKind::kTokenClassification)
    PTUNE_FAIL("{}: metric f1 is the entity-level F1 of token classification; use accuracy or macro_f1",
               where({"train.metric_for_best", "task.kind"}));
  if (r.train.metric_for_best == "f1" && !train::EntityScorer(d.labels).applies())
    PTUNE_FAIL("{}: metric f1 scores entities, which needs IOB tags in data.labels (O, B-X, I-X, …), not [{}]; use "
               "accuracy or macro_f1",
               where({"train.metric_for_best", "data.labels"}), join(d.labels));
  if (r.task.kind == model::TaskKind::kVerbalizer) {
    for (const std::string& label : d.labels)
      if (!d.verbalizer.count(label))
        PTUNE_FAIL("{}: task.kind verbalizer: data.verbalizer has no word for label '{}'",
                   where({"data.verbalizer", "task.kind"}), label);
    for (const auto& [label, word] : d.verbalizer)
      if (std::find(d.labels.begin(), d.labels.end(), label) == d.labels.end())
        PTUNE_FAIL("{}: data.verbalizer has a word for '{}', which is not in data.labels ({})",
                   where({"data.verbalizer"}), label, join(d.labels));
  }
}

Recipe build(const std::vector<Field>& schema, const Entries& entries, const std::string& origin) {
  Recipe r;
  for (const Field& f : schema) {
    const auto it = entries.find(f.full());
    if (it != entries.end())
      f.set(it->second, r);
    else if (f.required)
      PTUNE_FAIL("{}: missing required key '{}'", origin, f.full());
  }
  check_consistency(r, entries, origin);
  return r;
}

}  // namespace

Recipe parse_recipe(std::string_view yaml_text, const std::string& origin, const std::vector<std::string>& overrides) {
  const std::vector<Field> schema = make_schema();
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    PTUNE_FAIL("{}:{}:{}: invalid YAML: {}", origin, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
  Entries entries;
  collect_yaml(schema, root, origin, entries);
  for (const std::string& o : overrides) collect_override(schema, o, entries);
  return build(schema, entries, origin);
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_recipe(io::read_text_file(path), path, overrides);
}

std::string dump_recipe(const Recipe& r) {
  const std::vector<Field> schema = make_schema();
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const std::string& section : section_names(schema)) {
    out << YAML::Key << section << YAML::Value << YAML::BeginMap;
    for (const Field& f : schema) {
      if (f.section != section || !f.dump) continue;
      out << YAML::Key << f.name << YAML::Value;
      f.dump(out, r);
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  PTUNE_CHECK(out.good(), "recipe: cannot write YAML: {}", out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> recipe_keys() {
  std::vector<std::string> out;
  for (const Field& f : make_schema()) out.push_back(f.full());
  return out;
}

}  // namespace ptune::recipe
