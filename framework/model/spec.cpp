#include "framework/model/spec.h"

#include <cmath>

#include "framework/core/error.h"
#include "framework/io/json_file.h"

namespace ptune::model {

namespace {

using nlohmann::json;

// Typed access to config.json keys, with errors that name the file and key.
class ConfigReader {
 public:
  ConfigReader(const json& config, const std::string& origin) : config_(config), origin_(origin) {
    PTUNE_CHECK(config.is_object(), "{}: config must be a JSON object", origin);
  }

  bool has(const char* key) const { return config_.contains(key) && !config_[key].is_null(); }

  int64_t integer(const char* key) const {
    PTUNE_CHECK(has(key), "{}: missing key '{}'", origin_, key);
    return integer_value(key);
  }
  int64_t integer(const char* key, int64_t fallback) const { return has(key) ? integer_value(key) : fallback; }
  int64_t positive(const char* key) const {
    const int64_t v = integer(key);
    PTUNE_CHECK(v > 0, "{}: '{}' must be positive, got {}", origin_, key, v);
    return v;
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    PTUNE_CHECK(config_[key].is_number(), "{}: '{}' must be a number, got {}", origin_, key, config_[key].dump());
    return config_[key].get<double>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    PTUNE_CHECK(config_[key].is_string(), "{}: '{}' must be a string, got {}", origin_, key, config_[key].dump());
    return config_[key].get<std::string>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    PTUNE_CHECK(config_[key].is_boolean(), "{}: '{}' must be true or false, got {}", origin_, key,
                config_[key].dump());
    return config_[key].get<bool>();
  }
  const std::string& origin() const { return origin_; }

 private:
  int64_t integer_value(const char* key) const {
    PTUNE_CHECK(config_[key].is_number_integer(), "{}: '{}' must be an integer, got {}", origin_, key,
                config_[key].dump());
    return config_[key].get<int64_t>();
  }
  const json& config_;
  const std::string& origin_;
};

ops::Activation read_activation(const ConfigReader& c, const char* key, const std::string& fallback) {
  const std::string name = c.string(key, fallback);
  try {
    return ops::activation_from_name(name);
  } catch (const Error& e) {
    PTUNE_FAIL("{}: '{}': {}", c.origin(), key, e.what());
  }
}

}  // namespace

Arch arch_from_name(const std::string& name) {
  if (name == "gpt2") return Arch::kGpt2;
  if (name == "bert") return Arch::kBert;
  if (name == "roberta") return Arch::kRoberta;
  PTUNE_FAIL("unsupported model_type '{}' (supported: gpt2, bert, roberta)", name);
}

std::string ModelSpec::arch_name() const {
  switch (arch) {
    case Arch::kGpt2: return "gpt2";
    case Arch::kBert: return "bert";
    case Arch::kRoberta: return "roberta";
  }
  return "?";
}

ModelSpec ModelSpec::from_config(const json& config, const std::string& origin) {
  ConfigReader c(config, origin);
  PTUNE_CHECK(c.has("model_type"), "{}: missing key 'model_type'", origin);
  ModelSpec s;
  s.model_type = c.string("model_type", "");
  try {
    s.arch = arch_from_name(s.model_type);
  } catch (const Error& e) {
    PTUNE_FAIL("{}: 'model_type': {}", origin, e.what());
  }
  s.vocab_size = c.positive("vocab_size");
  if (s.arch == Arch::kGpt2) {
    s.hidden = c.positive("n_embd");
    s.layers = c.positive("n_layer");
    s.heads = c.positive("n_head");
    s.intermediate = c.has("n_inner") ? c.positive("n_inner") : 4 * s.hidden;
    s.max_positions = c.positive("n_positions");
    s.norm_eps = float(c.number("layer_norm_epsilon", 1e-5));
    s.activation = read_activation(c, "activation_function", "gelu_new");
    s.placement = NormPlacement::kPre;
    s.attention = ops::AttentionMask::kCausal;
    s.final_norm = true;
    s.pad_token_id = c.integer("pad_token_id", -1);
    // Options that change GPT-2's math and that ptune does not implement.
    PTUNE_CHECK(c.boolean("scale_attn_weights", true), "{}: 'scale_attn_weights: false' is not supported", origin);
    PTUNE_CHECK(!c.boolean("scale_attn_by_inverse_layer_idx", false),
                "{}: 'scale_attn_by_inverse_layer_idx' is not supported", origin);
    PTUNE_CHECK(!c.boolean("reorder_and_upcast_attn", false), "{}: 'reorder_and_upcast_attn' is not supported",
                origin);
  } else {
    s.hidden = c.positive("hidden_size");
    s.layers = c.positive("num_hidden_layers");
    s.heads = c.positive("num_attention_heads");
    s.intermediate = c.positive("intermediate_size");
    s.max_positions = c.positive("max_position_embeddings");
    s.type_vocab_size = c.integer("type_vocab_size", 2);
    s.norm_eps = float(c.number("layer_norm_eps", 1e-12));
    s.activation = read_activation(c, "hidden_act", "gelu");
    s.placement = NormPlacement::kPost;
    s.attention = ops::AttentionMask::kBidirectional;
    s.embedding_norm = true;
    s.pad_token_id = c.integer("pad_token_id", 0);
    const std::string position_type = c.string("position_embedding_type", "absolute");
    PTUNE_CHECK(position_type == "absolute", "{}: 'position_embedding_type: {}' is not supported (only absolute)",
                origin, position_type);
    PTUNE_CHECK(!c.boolean("is_decoder", false), "{}: 'is_decoder: true' is not supported for {}", origin,
                s.model_type);
    if (s.arch == Arch::kRoberta) s.position_offset = s.pad_token_id + 1;
  }
  PTUNE_CHECK(s.hidden % s.heads == 0, "{}: hidden size {} is not divisible by {} heads", origin, s.hidden, s.heads);
  s.kv_heads = s.heads;
  s.head_dim = s.hidden / s.heads;
  s.tie_word_embeddings = c.boolean("tie_word_embeddings", true);
  s.initializer_range = float(c.number("initializer_range", 0.02));
  return s;
}

ModelSpec ModelSpec::from_directory(const std::string& dir) {
  const std::string path = dir + "/config.json";
  return from_config(io::read_json_file(path), path);
}

json ModelSpec::to_config() const {
  auto act_name = [&] {
    switch (activation) {
      case ops::Activation::kGeluTanh: return "gelu_new";
      case ops::Activation::kGeluErf: return "gelu";
      case ops::Activation::kRelu: return "relu";
      case ops::Activation::kTanh: return "tanh";
      case ops::Activation::kSilu: return "silu";
    }
    return "gelu";
  };
  json c;
  c["model_type"] = model_type;
  c["vocab_size"] = vocab_size;
  c["tie_word_embeddings"] = tie_word_embeddings;
  c["initializer_range"] = initializer_range;
  switch (arch) {
    case Arch::kGpt2:
      c["architectures"] = {"GPT2LMHeadModel"};
      c["n_embd"] = hidden;
      c["n_layer"] = layers;
      c["n_head"] = heads;
      c["n_inner"] = intermediate;
      c["n_positions"] = max_positions;
      c["layer_norm_epsilon"] = norm_eps;
      c["activation_function"] = act_name();
      c["bos_token_id"] = vocab_size - 1;
      c["eos_token_id"] = vocab_size - 1;
      break;
    case Arch::kBert:
    case Arch::kRoberta:
      c["architectures"] = {arch == Arch::kBert ? "BertForMaskedLM" : "RobertaForMaskedLM"};
      c["hidden_size"] = hidden;
      c["num_hidden_layers"] = layers;
      c["num_attention_heads"] = heads;
      c["intermediate_size"] = intermediate;
      c["max_position_embeddings"] = max_positions;
      c["type_vocab_size"] = type_vocab_size;
      c["layer_norm_eps"] = norm_eps;
      c["hidden_act"] = act_name();
      c["pad_token_id"] = pad_token_id;
      break;
  }
  return c;
}

ModelSpec ModelSpec::tiny(Arch arch) {
  json c;
  switch (arch) {
    case Arch::kGpt2:
      c = {{"model_type", "gpt2"}, {"vocab_size", 1000}, {"n_embd", 64}, {"n_layer", 2}, {"n_head", 4},
           {"n_positions", 512}};
      break;
    case Arch::kBert:
      c = {{"model_type", "bert"}, {"vocab_size", 1000}, {"hidden_size", 64}, {"num_hidden_layers", 2},
           {"num_attention_heads", 4}, {"intermediate_size", 128}, {"max_position_embeddings", 512},
           {"type_vocab_size", 2}, {"pad_token_id", 0}};
      break;
    case Arch::kRoberta:
      c = {{"model_type", "roberta"}, {"vocab_size", 1000}, {"hidden_size", 64}, {"num_hidden_layers", 2},
           {"num_attention_heads", 4}, {"intermediate_size", 128}, {"max_position_embeddings", 514},
           {"type_vocab_size", 1}, {"pad_token_id", 1}, {"layer_norm_eps", 1e-5}};
      break;
  }
  // std 1/√64: unit-gain projections at width 64, so that a random tiny
  // model still mixes its tokens (0.02 suits widths near 768, not 64).
  c["initializer_range"] = 0.125;
  return from_config(c, "tiny preset");
}

ops::AttentionConfig ModelSpec::attention_config() const {
  ops::AttentionConfig a;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = head_dim;
  a.mask = attention;
  a.scale = 1.0f / std::sqrt(float(head_dim));
  return a;
}

}  // namespace ptune::model
