#include "framework/model/spec.h"

#include <cmath>
#include <optional>

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

// One RoPE parameter object `p` (named `key` in messages; empty: none),
// with `theta` where it names no rope_theta. Every key that changes the
// math is read or refused.
RopeSpec rope_from(const json& p, const std::string& key, double theta, const ConfigReader& c,
                   int64_t max_positions) {
  const std::string& origin = c.origin();
  RopeSpec r;
  PTUNE_CHECK(p.is_object(), "{}: '{}' must be an object, got {}", origin, key, p.dump());
  auto number = [&](const char* k, double fallback) {
    if (!p.contains(k) || p[k].is_null()) return fallback;
    PTUNE_CHECK(p[k].is_number(), "{}: '{}.{}' must be a number, got {}", origin, key, k, p[k].dump());
    return p[k].get<double>();
  };
  // Values that become f32 (a base, factors) or a position count: in range,
  // so that no conversion overflows (a position count up to 2^40 over a
  // factor above 1e-20 is still an f32).
  auto f32_range = [&](const char* k, double v) {
    PTUNE_CHECK(v > 1e-20 && v < 1e30, "{}: '{}.{}' must be between 1e-20 and 1e30, got {}", origin, key, k, v);
    return v;
  };
  auto positions = [&](const char* k, int64_t fallback) {
    const double v = number(k, double(fallback));
    PTUNE_CHECK(v >= 1 && v <= double(int64_t(1) << 40) && v == std::floor(v),
                "{}: '{}.{}' must be a position count, got {}", origin, key, k, v);
    return int64_t(v);
  };
  r.theta = f32_range("rope_theta", number("rope_theta", theta));
  std::string type = "default";
  for (const char* k : {"rope_type", "type"}) {
    if (p.contains(k) && !p[k].is_null()) {
      PTUNE_CHECK(p[k].is_string(), "{}: '{}.{}' must be a string", origin, key, k);
      type = p[k].get<std::string>();
      break;
    }
  }
  // Phi3Config renames its checkpoints' older names for LongRoPE.
  const bool phi3 = c.string("model_type", "") == "phi3";
  if (phi3 && (type == "su" || type == "yarn")) type = "longrope";
  r.partial_rotary_factor = number("partial_rotary_factor", c.number("partial_rotary_factor", 1.0));
  PTUNE_CHECK(r.partial_rotary_factor > 0 && r.partial_rotary_factor <= 1,
              "{}: 'partial_rotary_factor' {} outside (0, 1]", origin, r.partial_rotary_factor);
  if (type == "default") {
    r.scaling = RopeScaling::kNone;
  } else if (type == "linear" || type == "dynamic" || type == "llama3") {
    r.scaling = type == "linear" ? RopeScaling::kLinear : type == "dynamic" ? RopeScaling::kDynamic : RopeScaling::kLlama3;
    PTUNE_CHECK(p.contains("factor"), "{}: '{}.factor' is required for rope_type {}", origin, key, type);
    r.factor = f32_range("factor", number("factor", 1.0));
    r.original_max_positions = max_positions;
    if (r.scaling == RopeScaling::kLlama3) {
      r.low_freq_factor = f32_range("low_freq_factor", number("low_freq_factor", 1.0));
      r.high_freq_factor = f32_range("high_freq_factor", number("high_freq_factor", 4.0));
      PTUNE_CHECK(r.high_freq_factor != r.low_freq_factor, "{}: '{}.high_freq_factor' equals low_freq_factor", origin,
                  key);
      r.original_max_positions = positions("original_max_position_embeddings", max_positions);
    }
  } else if (type == "longrope") {
    // As transformers' _compute_longrope_parameters; Phi-3's top-level
    // original_max_position_embeddings (Phi3Config: 4096) comes first.
    r.scaling = RopeScaling::kLongRope;
    if (c.has("original_max_position_embeddings"))
      r.original_max_positions = c.positive("original_max_position_embeddings");
    else
      r.original_max_positions = phi3 ? 4096 : positions("original_max_position_embeddings", max_positions);
    r.factor = f32_range("factor", number("factor", double(max_positions) / double(r.original_max_positions)));
    // (transformers divides by log 1 there too: a pretraining length of 1 is refused)
    PTUNE_CHECK(r.factor <= 1.0 || r.original_max_positions > 1,
                "{}: 'original_max_position_embeddings' 1 with LongRoPE factor {}", origin, r.factor);
    const double attention = r.factor <= 1.0 ? 1.0
                                             : std::sqrt(1.0 + std::log(r.factor) /
                                                                   std::log(double(r.original_max_positions)));
    r.attention_factor = float(f32_range("attention_factor", number("attention_factor", attention)));
    for (auto [name, out] : {std::pair{"short_factor", &r.short_factor}, std::pair{"long_factor", &r.long_factor}}) {
      PTUNE_CHECK(p.contains(name) && p[name].is_array(),
                  "{}: '{}.{}' must be a list of numbers for rope_type longrope", origin, key, name);
      for (const json& v : p[name]) {
        PTUNE_CHECK(v.is_number() && v.get<double>() > 1e-20 && v.get<double>() < 1e30,
                    "{}: '{}.{}' holds {}, not a number between 1e-20 and 1e30", origin, key, name, v.dump());
        out->push_back(v.get<float>());
      }
    }
  } else {
    PTUNE_FAIL("{}: '{}.rope_type: {}' is not supported (supported: default, linear, dynamic, llama3, longrope)",
               origin, key, type);
  }
  return r;
}

// rope_parameters (transformers ≥ 5) or rope_scaling + rope_theta (older
// checkpoints).
RopeSpec read_rope(const json& config, const ConfigReader& c, int64_t max_positions) {
  const char* key = c.has("rope_parameters") ? "rope_parameters" : c.has("rope_scaling") ? "rope_scaling" : nullptr;
  return rope_from(key ? config[key] : json::object(), key ? key : "rope_parameters", c.number("rope_theta", 10000.0),
                   c, max_positions);
}

// layer_types (transformers ≥ 4.5x writes it for models that mix layer
// kinds): 1 for each "sliding_attention" layer, 0 for "full_attention";
// nullopt when config.json has no such key.
std::optional<std::vector<uint8_t>> read_sliding_layers(const json& config, const ConfigReader& c, int64_t layers) {
  if (!c.has("layer_types")) return std::nullopt;
  const json& v = config["layer_types"];
  PTUNE_CHECK(v.is_array() && int64_t(v.size()) == layers, "{}: 'layer_types' must list {} layers, got {}", c.origin(),
              layers, v.dump());
  std::vector<uint8_t> sliding(size_t(layers), 0);
  for (size_t l = 0; l < v.size(); ++l) {
    PTUNE_CHECK(v[l] == "sliding_attention" || v[l] == "full_attention",
                "{}: 'layer_types[{}]' is {}, not sliding_attention or full_attention", c.origin(), l, v[l].dump());
    sliding[l] = v[l] == "sliding_attention";
  }
  return sliding;
}

// Gemma 3: a RoPE for its full-attention layers (base 1e6, and any
// scaling) and one for its sliding-window layers (base 1e4) —
// rope_parameters.{full_attention, sliding_attention} (transformers ≥ 5) or
// rope_theta + rope_scaling and rope_local_base_freq; the sliding layers
// from layer_types, or every layer but each sliding_window_pattern-th.
void read_gemma3_attention(const json& config, const ConfigReader& c, ModelSpec& s) {
  const std::string& origin = c.origin();
  const bool nested = c.has("rope_parameters") && config["rope_parameters"].contains("full_attention");
  if (nested) {
    const json& p = config["rope_parameters"];
    s.rope = rope_from(p["full_attention"], "rope_parameters.full_attention", 1e6, c, s.max_positions);
    s.rope_local = rope_from(p.value("sliding_attention", json::object()), "rope_parameters.sliding_attention", 1e4,
                             c, s.max_positions);
  } else {  // one flat object (or none) is the full-attention layers', as transformers converts it
    const char* key = c.has("rope_parameters") ? "rope_parameters" : c.has("rope_scaling") ? "rope_scaling" : nullptr;
    s.rope = rope_from(key ? config[key] : json::object(), key ? key : "rope_scaling", c.number("rope_theta", 1e6), c,
                       s.max_positions);
    s.rope_local.theta = c.number("rope_local_base_freq", 1e4);
    PTUNE_CHECK(s.rope_local.theta > 1e-20 && s.rope_local.theta < 1e30,
                "{}: 'rope_local_base_freq' must be between 1e-20 and 1e30, got {}", origin, s.rope_local.theta);
  }
  if (std::optional<std::vector<uint8_t>> types = read_sliding_layers(config, c, s.layers)) {
    s.local_layers = std::move(*types);
  } else {
    const int64_t pattern = c.has("sliding_window_pattern") ? c.positive("sliding_window_pattern") : 6;
    s.local_layers.assign(size_t(s.layers), 0);
    for (size_t l = 0; l < s.local_layers.size(); ++l) s.local_layers[l] = (int64_t(l) + 1) % pattern != 0;
  }
  // The local layers rotate with rope_local and attend over the window.
  if (std::find(s.local_layers.begin(), s.local_layers.end(), 1) != s.local_layers.end())
    s.sliding_window = c.has("sliding_window") ? c.positive("sliding_window") : 4096;
  s.window_layers = s.local_layers;
  s.query_pre_attn_scalar = c.number("query_pre_attn_scalar", 256.0);
  PTUNE_CHECK(s.query_pre_attn_scalar > 0, "{}: 'query_pre_attn_scalar' must be positive", origin);
  for (const char* k : {"final_logit_softcapping", "attn_logit_softcapping"})
    PTUNE_CHECK(!c.has(k), "{}: '{}' is not supported (Gemma 2's soft-capping)", origin, k);
  PTUNE_CHECK(!c.boolean("use_bidirectional_attention", false),
              "{}: 'use_bidirectional_attention: true' is not supported", origin);
}

// SmolLM3: no_rope_layers (1 = the layer uses RoPE) as given, or every
// no_rope_layer_interval-th layer NoPE, as SmolLM3Config fills it in.
std::vector<uint8_t> read_rope_layers(const json& config, const ConfigReader& c, int64_t layers) {
  std::vector<uint8_t> rope(static_cast<size_t>(layers), 1);
  if (c.has("no_rope_layers")) {
    const json& v = config["no_rope_layers"];
    PTUNE_CHECK(v.is_array() && int64_t(v.size()) == layers, "{}: 'no_rope_layers' must list {} layers, got {}",
                c.origin(), layers, v.dump());
    for (size_t l = 0; l < rope.size(); ++l) {
      PTUNE_CHECK(v[l].is_number_integer() && (v[l] == 0 || v[l] == 1),
                  "{}: 'no_rope_layers[{}]' must be 0 or 1, got {}", c.origin(), l, v[l].dump());
      rope[l] = uint8_t(v[l].get<int>());
    }
  } else {
    const int64_t interval = c.has("no_rope_layer_interval") ? c.positive("no_rope_layer_interval") : 4;
    for (size_t l = 0; l < rope.size(); ++l) rope[l] = (int64_t(l) + 1) % interval != 0;
  }
  return rope;
}

void read_llama_family(const json& config, const ConfigReader& c, ModelSpec& s) {
  const std::string& origin = c.origin();
  s.hidden = c.positive("hidden_size");
  s.layers = c.positive("num_hidden_layers");
  s.heads = c.positive("num_attention_heads");
  s.intermediate = c.positive("intermediate_size");
  s.max_positions = c.positive("max_position_embeddings");
  s.kv_heads = c.has("num_key_value_heads") ? c.positive("num_key_value_heads") : s.heads;
  PTUNE_CHECK(s.heads % s.kv_heads == 0, "{}: 'num_key_value_heads' {} does not divide num_attention_heads {}", origin,
              s.kv_heads, s.heads);
  if (c.has("head_dim")) {
    s.head_dim = c.positive("head_dim");
  } else if (s.arch == Arch::kQwen3) {
    s.head_dim = 128;  // Qwen3Config's default, whatever hidden/heads is
  } else if (s.arch == Arch::kGemma3) {
    s.head_dim = 256;  // Gemma3TextConfig's
  } else {
    PTUNE_CHECK(s.hidden % s.heads == 0, "{}: hidden size {} is not divisible by {} heads (and no 'head_dim')", origin,
                s.hidden, s.heads);
    s.head_dim = s.hidden / s.heads;
  }
  PTUNE_CHECK(s.head_dim % 2 == 0, "{}: 'head_dim' {} must be even for rotary embeddings", origin, s.head_dim);
  s.norm = ops::NormKind::kRmsNorm;
  s.norm_eps = float(c.number("rms_norm_eps", s.arch == Arch::kPhi3 ? 1e-5 : 1e-6));
  s.activation = s.arch == Arch::kGemma3 ? read_activation(c, "hidden_activation", "gelu_pytorch_tanh")
                                         : read_activation(c, "hidden_act", "silu");
  s.gated_mlp = true;
  s.placement = NormPlacement::kPre;
  s.attention = ops::AttentionMask::kCausal;
  s.final_norm = true;
  s.positions = PositionKind::kRope;
  s.type_vocab_size = 0;
  s.pad_token_id = c.integer("pad_token_id", s.arch == Arch::kPhi3 ? 32000 : -1);
  if (s.arch != Arch::kGemma3) s.rope = read_rope(config, c, s.max_positions);
  s.fused_projections = s.arch == Arch::kPhi3;
  if (s.arch == Arch::kLlama || s.arch == Arch::kSmolLM3) {
    s.qkv_bias = s.proj_bias = c.boolean("attention_bias", false);
    s.mlp_bias = c.boolean("mlp_bias", false);
  } else if (s.arch == Arch::kQwen3 || s.arch == Arch::kGemma3) {
    s.qkv_bias = s.proj_bias = c.boolean("attention_bias", false);
    s.mlp_bias = false;
    s.qk_norm = true;
  } else {
    s.qkv_bias = s.arch == Arch::kQwen2;  // Qwen2's q/k/v have biases, o_proj none
    s.proj_bias = false;
    s.mlp_bias = false;
  }
  // Sliding windows (window_layers): Mistral and Phi-3 on every layer;
  // Qwen2/Qwen3 (use_sliding_window) from max_window_layers on and SmolLM3
  // on its NoPE layers, as their transformers configs derive layer_types
  // when config.json does not list them.
  if (s.arch == Arch::kSmolLM3) s.rope_layers = read_rope_layers(config, c, s.layers);
  if (s.arch == Arch::kMistral || s.arch == Arch::kPhi3) s.sliding_window = c.integer("sliding_window", 0);
  if ((s.arch == Arch::kQwen2 || s.arch == Arch::kQwen3 || s.arch == Arch::kSmolLM3) &&
      c.boolean("use_sliding_window", false)) {
    s.sliding_window = c.positive("sliding_window");
    if (std::optional<std::vector<uint8_t>> types = read_sliding_layers(config, c, s.layers)) {
      s.window_layers = std::move(*types);
    } else {
      s.window_layers.assign(size_t(s.layers), 0);
      const int64_t first = s.arch == Arch::kSmolLM3 ? 0 : c.integer("max_window_layers", 28);
      PTUNE_CHECK(first >= 0, "{}: 'max_window_layers' must not be negative, got {}", origin, first);
      for (int64_t l = first; l < s.layers; ++l)
        s.window_layers[size_t(l)] = s.arch == Arch::kSmolLM3 ? !s.rotates(l) : 1;
    }
  }
  if (s.arch == Arch::kGemma3) {
    read_gemma3_attention(config, c, s);
    s.norm_plus_one = true;
    s.post_norms = true;
    s.embed_scale = float(std::sqrt(double(s.hidden)));
  }
  PTUNE_CHECK(s.sliding_window >= 0, "{}: 'sliding_window' must be positive", origin);
  // Only Phi-3's attention splits a head into rotated and passed columns.
  const double partial = s.rope.partial_rotary_factor;
  PTUNE_CHECK(partial == 1.0 || s.arch == Arch::kPhi3,
              "{}: 'partial_rotary_factor: {}' is not supported for {} (only 1.0)", origin, partial, s.model_type);
  // rotary_dim serves every layer: Gemma 3's sliding-window RoPE may not rotate fewer columns.
  PTUNE_CHECK(s.rope_local.partial_rotary_factor == 1.0,
              "{}: 'partial_rotary_factor: {}' for the sliding-window layers is not supported (only 1.0)", origin,
              s.rope_local.partial_rotary_factor);
  s.rotary_dim = int64_t(double(s.head_dim) * partial);  // int(head_dim · factor), as transformers
  PTUNE_CHECK(s.rotary_dim >= 2 && s.rotary_dim % 2 == 0,
              "{}: 'partial_rotary_factor' {} rotates {} of {} columns a head (must be even, at least 2)", origin,
              partial, s.rotary_dim, s.head_dim);
  for (const RopeSpec* r : {&s.rope, &s.rope_local}) {
    if (r->scaling != RopeScaling::kLongRope) continue;
    for (const auto& [name, f] :
         {std::pair{"short_factor", &r->short_factor}, std::pair{"long_factor", &r->long_factor}})
      PTUNE_CHECK(int64_t(f->size()) == s.rotary_dim / 2,
                  "{}: rope '{}' lists {} factors; {} rotated columns a head need {}", origin, name, f->size(),
                  s.rotary_dim, s.rotary_dim / 2);
  }
}

}  // namespace

Arch arch_from_name(const std::string& name) {
  if (name == "gpt2") return Arch::kGpt2;
  if (name == "bert") return Arch::kBert;
  // XLM-R and CamemBERT are RoBERTa's network and weight names (base prefix
  // "roberta") with a SentencePiece vocabulary.
  if (name == "roberta" || name == "xlm-roberta" || name == "camembert") return Arch::kRoberta;
  if (name == "llama") return Arch::kLlama;
  if (name == "mistral") return Arch::kMistral;
  if (name == "qwen2") return Arch::kQwen2;
  if (name == "qwen3") return Arch::kQwen3;
  if (name == "smollm3") return Arch::kSmolLM3;
  if (name == "gemma3_text") return Arch::kGemma3;
  if (name == "phi3") return Arch::kPhi3;
  PTUNE_FAIL("unsupported model_type '{}' (supported: gpt2, bert, roberta, xlm-roberta, camembert, llama, mistral, "
             "qwen2, qwen3, smollm3, gemma3_text, phi3)", name);
}

std::string arch_name(Arch arch) {
  switch (arch) {
    case Arch::kGpt2: return "gpt2";
    case Arch::kBert: return "bert";
    case Arch::kRoberta: return "roberta";
    case Arch::kLlama: return "llama";
    case Arch::kMistral: return "mistral";
    case Arch::kQwen2: return "qwen2";
    case Arch::kQwen3: return "qwen3";
    case Arch::kSmolLM3: return "smollm3";
    case Arch::kGemma3: return "gemma3_text";
    case Arch::kPhi3: return "phi3";
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
  if (s.is_llama_family()) {
    read_llama_family(config, c, s);
    // The config classes' defaults when the key is absent: SmolLM3 and Gemma 3 tie.
    s.tie_word_embeddings = c.boolean("tie_word_embeddings", s.arch == Arch::kSmolLM3 || s.arch == Arch::kGemma3);
    s.initializer_range = float(c.number("initializer_range", 0.02));
    return s;
  }
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

namespace {

// A RopeSpec as transformers' rope_parameters writes it.
json rope_json(const RopeSpec& rope) {
  json rp = {{"rope_theta", rope.theta}};
  switch (rope.scaling) {
    case RopeScaling::kNone: rp["rope_type"] = "default"; break;
    case RopeScaling::kLinear: rp["rope_type"] = "linear"; break;
    case RopeScaling::kDynamic: rp["rope_type"] = "dynamic"; break;
    case RopeScaling::kLlama3:
      rp["rope_type"] = "llama3";
      rp["low_freq_factor"] = rope.low_freq_factor;
      rp["high_freq_factor"] = rope.high_freq_factor;
      rp["original_max_position_embeddings"] = rope.original_max_positions;
      break;
    case RopeScaling::kLongRope:
      rp["rope_type"] = "longrope";
      rp["short_factor"] = rope.short_factor;
      rp["long_factor"] = rope.long_factor;
      rp["attention_factor"] = rope.attention_factor;
      rp["original_max_position_embeddings"] = rope.original_max_positions;
      break;
  }
  if (rope.scaling != RopeScaling::kNone) rp["factor"] = rope.factor;
  if (rope.partial_rotary_factor != 1.0) rp["partial_rotary_factor"] = rope.partial_rotary_factor;
  return rp;
}

}  // namespace

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
      c["architectures"] = {arch == Arch::kBert                ? "BertForMaskedLM"
                            : model_type == "xlm-roberta" ? "XLMRobertaForMaskedLM"
                            : model_type == "camembert"   ? "CamembertForMaskedLM"
                                                          : "RobertaForMaskedLM"};
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
    case Arch::kLlama:
    case Arch::kMistral:
    case Arch::kQwen2:
    case Arch::kQwen3:
    case Arch::kSmolLM3:
    case Arch::kGemma3:
    case Arch::kPhi3: {
      const char* cls = arch == Arch::kLlama     ? "LlamaForCausalLM"
                        : arch == Arch::kMistral ? "MistralForCausalLM"
                        : arch == Arch::kQwen2   ? "Qwen2ForCausalLM"
                        : arch == Arch::kQwen3   ? "Qwen3ForCausalLM"
                        : arch == Arch::kSmolLM3 ? "SmolLM3ForCausalLM"
                        : arch == Arch::kPhi3    ? "Phi3ForCausalLM"
                                                 : "Gemma3ForCausalLM";
      c["architectures"] = {cls};
      c["hidden_size"] = hidden;
      c["num_hidden_layers"] = layers;
      c["num_attention_heads"] = heads;
      c["num_key_value_heads"] = kv_heads;
      c["head_dim"] = head_dim;
      c["intermediate_size"] = intermediate;
      c["max_position_embeddings"] = max_positions;
      c["rms_norm_eps"] = norm_eps;
      c["hidden_act"] = act_name();
      if (arch == Arch::kGemma3) {
        c.erase("hidden_act");
        c["hidden_activation"] = std::string(act_name()) == "gelu_new" ? "gelu_pytorch_tanh" : act_name();
        c["rope_parameters"] = {{"full_attention", rope_json(rope)}, {"sliding_attention", rope_json(rope_local)}};
        json types = json::array();
        for (size_t l = 0; l < size_t(layers); ++l)
          types.push_back(is_local(int64_t(l)) ? "sliding_attention" : "full_attention");
        c["layer_types"] = types;
        c["sliding_window"] = sliding_window > 0 ? sliding_window : 4096;
        // An int in Gemma3TextConfig (strictly typed).
        const double q = query_pre_attn_scalar;
        c["query_pre_attn_scalar"] = q == std::floor(q) ? json(int64_t(q)) : json(q);
      } else {
        c["rope_parameters"] = rope_json(rope);
      }
      if (arch == Arch::kLlama || arch == Arch::kQwen3 || arch == Arch::kSmolLM3 || arch == Arch::kGemma3)
        c["attention_bias"] = qkv_bias;
      if (arch == Arch::kLlama || arch == Arch::kSmolLM3) c["mlp_bias"] = mlp_bias;
      if (arch == Arch::kMistral || arch == Arch::kPhi3)
        c["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
      // Phi3Config's top-level key overrides rope_parameters' (default 4096).
      if (arch == Arch::kPhi3 && rope.scaling == RopeScaling::kLongRope)
        c["original_max_position_embeddings"] = rope.original_max_positions;
      if (arch == Arch::kQwen2 || arch == Arch::kQwen3 || arch == Arch::kSmolLM3) c["use_sliding_window"] = false;
      if (!rope_layers.empty()) c["no_rope_layers"] = rope_layers;
      c["bos_token_id"] = vocab_size - 2;
      c["eos_token_id"] = vocab_size - 1;
      // null, not absent, without one: SmolLM3Config's default (128004) is no id of a small vocabulary.
      c["pad_token_id"] = pad_token_id >= 0 ? json(pad_token_id) : json(nullptr);
      break;
    }
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
    case Arch::kLlama:
    case Arch::kMistral:
    case Arch::kQwen2:
    case Arch::kQwen3:
    case Arch::kSmolLM3:
    case Arch::kGemma3:
    case Arch::kPhi3:
      // GQA 2:1 and a head_dim apart from hidden/heads, as real checkpoints have.
      c = {{"model_type", model::arch_name(arch)},
           {"vocab_size", 1000}, {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
           {"num_key_value_heads", 2}, {"head_dim", 16}, {"intermediate_size", 128},
           {"max_position_embeddings", 512}, {"rms_norm_eps", 1e-6}, {"pad_token_id", 0}};
      if (arch == Arch::kSmolLM3) c["no_rope_layers"] = {1, 0};  // the second layer NoPE
      // Gemma 3: a sliding-window layer (its own RoPE base) then a full one.
      if (arch == Arch::kGemma3) c["layer_types"] = {"sliding_attention", "full_attention"};
      break;
  }
  // std 1/√64: unit-gain projections at width 64, so that a random tiny
  // model still mixes its tokens (0.02 suits widths near 768, not 64).
  c["initializer_range"] = 0.125;
  return from_config(c, "tiny preset");
}

void ModelSpec::rope_inv_freq(int64_t max_position, bool local, std::vector<float>& inv) const {
  // In f32 as transformers computes it: 1 / base^(2i/D).
  const RopeSpec& rope = local ? rope_local : this->rope;
  const int64_t D = rotary_dim;  // the rotated columns (transformers' dim)
  double base = rope.theta;
  if (rope.scaling == RopeScaling::kDynamic) {
    // transformers (dynamic NTK) rescales the base once the batch reaches
    // past max_position_embeddings. ptune is stateless: it rescales for the
    // largest position of this batch (transformers keeps the largest seen).
    const double seq = double(max_position + 1), mpe = double(rope.original_max_positions);
    if (seq > mpe)
      base = base * std::pow(rope.factor * seq / mpe - (rope.factor - 1.0), double(D) / double(D - 2));
  }
  // LongRoPE divides each frequency by its own factor: the long ones once
  // the batch reaches past the pretraining length (transformers switches
  // per forward on max(position_ids) + 1, as here).
  const std::vector<float>* ext = nullptr;
  if (rope.scaling == RopeScaling::kLongRope)
    ext = max_position + 1 > rope.original_max_positions ? &rope.long_factor : &rope.short_factor;
  inv.resize(size_t(D / 2));
  for (int64_t i = 0; i < D / 2; ++i) {
    const float e = float(2 * i) / float(D);
    inv[size_t(i)] = 1.0f / ((ext ? (*ext)[size_t(i)] : 1.0f) * std::pow(float(base), e));
  }
  if (rope.scaling == RopeScaling::kLinear) {
    for (float& f : inv) f = f / float(rope.factor);
  } else if (rope.scaling == RopeScaling::kLlama3) {
    const double old_len = double(rope.original_max_positions);
    const double low_wavelen = old_len / rope.low_freq_factor, high_wavelen = old_len / rope.high_freq_factor;
    const float factor = float(rope.factor);
    for (float& f : inv) {
      const float wavelen = float(2.0 * M_PI) / f;
      const float scaled = wavelen > float(low_wavelen) ? f / factor : f;
      if (wavelen < float(high_wavelen) || wavelen > float(low_wavelen)) {
        f = scaled;
      } else {  // medium frequencies: interpolate with a smooth factor
        const float smooth = (float(old_len) / wavelen - float(rope.low_freq_factor)) /
                             float(rope.high_freq_factor - rope.low_freq_factor);
        f = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
    }
  }
}

ops::AttentionConfig ModelSpec::attention_config() const {
  ops::AttentionConfig a;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = head_dim;
  a.mask = attention;
  a.scale = 1.0f / std::sqrt(float(query_pre_attn_scalar > 0 ? query_pre_attn_scalar : double(head_dim)));
  return a;
}

}  // namespace ptune::model
