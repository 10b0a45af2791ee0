#include "framework/model/weights.h"

#include <fmt/format.h>

namespace ptune::model {

namespace {

// Every weight starts at a multiple of 64 elements of its unit (256 bytes
// in f32, 128 in bf16): GPU kernels and cuBLASLt's bias epilogues want
// aligned operands, and a bias at an odd bf16 offset has no algorithm.
constexpr int64_t kWeightAlignment = 64;

// Appends a parameter to a unit; its sources are the checkpoint tensors
// stacked along rows.
void add(WeightUnit& unit, Tensor* slot, std::string name, Shape shape, std::vector<Source> sources) {
  for (Source& s : sources)
    if (s.rows == 0) s.rows = shape[0];
  const int64_t offset = (unit.numel + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment;
  Param p{std::move(name), shape, std::move(sources), slot, offset};
  unit.numel = offset + shape.numel();
  unit.params.push_back(std::move(p));
}

Source copy(std::string name, int64_t rows = 0) { return {std::move(name), Transform::kCopy, rows}; }
Source conv1d(std::string name) { return {std::move(name), Transform::kTranspose, 0}; }
Source plus_one(std::string name) { return {std::move(name), Transform::kPlusOne, 0}; }

// The shape a source has in the checkpoint.
Shape source_shape(const Param& p, const Source& s) {
  if (p.shape.dim() == 1) return {s.rows};
  return s.transform == Transform::kTranspose ? Shape{p.shape[1], s.rows} : Shape{s.rows, p.shape[1]};
}

// Writes checkpoint tensor `src` (rows × cols as stored) into dst rows.
void read_source(float* dst, const Tensor& src, Transform t, int64_t rows, int64_t cols) {
  const float* s = src.data<float>();
  if (t == Transform::kCopy) {
    std::copy(s, s + rows * cols, dst);
    return;
  }
  for (int64_t i = 0; i < rows; ++i)  // src is (cols, rows)
    for (int64_t j = 0; j < cols; ++j) dst[i * cols + j] = s[j * rows + i];
}

// Elements [begin, end) of `unit`'s flat buffer, read from the checkpoint
// as f32 into dst[0, end − begin); alignment gaps are left as they are. Only
// the sources that overlap the range are read, and a copied source only
// in the overlap, so a rank loading its part touches ~1/N of the file.
void read_unit_range(const WeightUnit& unit, const io::CheckpointReader& checkpoint, int64_t begin, int64_t end,
                     float* dst) {
  for (const Param& p : unit.params) {
    const int64_t cols = p.shape.dim() == 2 ? p.shape[1] : 1;
    int64_t at = p.offset;  // where the source's first element lands in the buffer
    for (const Source& s : p.sources) {
      const int64_t n = s.rows * cols, lo = std::max(begin, at), hi = std::min(end, at + n);
      if (lo < hi) {
        const Tensor v = checkpoint.view(s.name);
        if (s.transform != Transform::kTranspose) {
          const Tensor part = v.view({v.numel()}).slice(lo - at, hi - at).to(DType::kF32);
          float* out = dst + (lo - begin);
          std::copy(part.data<float>(), part.data<float>() + part.numel(), out);
          if (s.transform == Transform::kPlusOne)
            for (int64_t i = 0; i < part.numel(); ++i) out[i] += 1.0f;  // in f32, as Gemma's norms add it
        } else {  // GPT-2's Conv1D (cols, rows): transposed whole, the overlap kept
          Tensor rows = Tensor::empty({s.rows, cols}, DType::kF32);
          read_source(rows.data<float>(), v.to(DType::kF32), s.transform, s.rows, cols);
          std::copy(rows.data<float>() + (lo - at), rows.data<float>() + (hi - at), dst + (lo - begin));
        }
      }
      at += n;
    }
  }
}

// `t` on `device` in `dtype` (converted on the host).
Tensor placed(const Tensor& t, Device device, DType dtype) {
  if (t.device() == device && t.dtype() == dtype) return t;
  const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  const Tensor converted = host.dtype() == dtype ? host : host.to(dtype);
  return converted.device() == device ? converted : converted.to(device);
}

}  // namespace

std::string ModelWeights::default_prefix(Arch arch) {
  switch (arch) {
    case Arch::kGpt2: return "transformer.";
    case Arch::kBert: return "bert.";
    case Arch::kRoberta: return "roberta.";
    case Arch::kLlama:
    case Arch::kMistral:
    case Arch::kQwen2:
    case Arch::kQwen3:
    case Arch::kSmolLM3:
    case Arch::kGemma3:
    case Arch::kPhi3: return "model.";
  }
  return "";
}

void WeightUnit::bind(const Tensor& flat_buffer) {
  PTUNE_CHECK(flat_buffer.numel() == numel, "unit {}: buffer of {} elements for {}", name, flat_buffer.numel(), numel);
  flat = flat_buffer;
  for (Param& p : params) *p.slot = flat.slice(p.offset, p.offset + p.shape.numel()).view(p.shape);
}

void ModelWeights::to(Device device, DType dtype) {
  device_ = device;
  dtype_ = dtype;
  for (WeightUnit& u : units_) {
    if (u.flat.defined()) u.bind(placed(u.flat, device, dtype));
    if (u.shard.defined()) u.shard = placed(u.shard, device, dtype);
    // Neither: sharded away, the shards move with their owner.
  }
}

ModelWeights::ModelWeights(const ModelSpec& spec, std::set<Component> components, std::string prefix,
                           int64_t score_labels)
    : spec_(spec), components_(std::move(components)), prefix_(std::move(prefix)) {
  const int64_t C = spec.hidden, V = spec.vocab_size, I = spec.intermediate;
  const int64_t QKV = spec.attention_config().qkv_width(), Q = spec.attention_config().q_width();
  const std::string& b = prefix_;
  blocks.resize(size_t(spec.layers));

  WeightUnit emb;
  emb.name = "embeddings";
  EmbeddingWeights& e = embeddings;
  if (spec.is_llama_family()) {
    add(emb, &e.word, "embeddings.word", {V, C}, {copy(b + "embed_tokens.weight")});
  } else if (spec.arch == Arch::kGpt2) {
    add(emb, &e.word, "embeddings.word", {V, C}, {copy(b + "wte.weight")});
    add(emb, &e.position, "embeddings.position", {spec.max_positions, C}, {copy(b + "wpe.weight")});
  } else {
    const std::string p = b + "embeddings.";
    add(emb, &e.word, "embeddings.word", {V, C}, {copy(p + "word_embeddings.weight")});
    add(emb, &e.position, "embeddings.position", {spec.max_positions, C}, {copy(p + "position_embeddings.weight")});
    if (spec.type_vocab_size > 0)
      add(emb, &e.token_type, "embeddings.token_type", {spec.type_vocab_size, C},
          {copy(p + "token_type_embeddings.weight")});
    add(emb, &e.norm_w, "embeddings.norm.weight", {C}, {copy(p + "LayerNorm.weight")});
    add(emb, &e.norm_b, "embeddings.norm.bias", {C}, {copy(p + "LayerNorm.bias")});
  }
  units_.push_back(std::move(emb));

  for (int64_t l = 0; l < spec.layers; ++l) {
    BlockWeights& w = blocks[size_t(l)];
    WeightUnit u;
    u.name = fmt::format("block.{}", l);
    const std::string n = fmt::format("block.{}.", l);
    if (spec.is_llama_family()) {
      const std::string p = fmt::format("{}layers.{}.", b, l);
      const std::string s = p + "self_attn.";
      const int64_t KV = spec.attention_config().kv_width();
      const auto norm = [&](const std::string& name) { return spec.norm_plus_one ? plus_one(name) : copy(name); };
      add(u, &w.norm1_w, n + "norm1.weight", {C}, {norm(p + "input_layernorm.weight")});
      if (spec.fused_projections)  // Phi-3: qkv_proj is [q; k; v] already
        add(u, &w.qkv_w, n + "qkv.weight", {QKV, C}, {copy(s + "qkv_proj.weight")});
      else
        add(u, &w.qkv_w, n + "qkv.weight", {QKV, C},
            {copy(s + "q_proj.weight", Q), copy(s + "k_proj.weight", KV), copy(s + "v_proj.weight", KV)});
      if (spec.qkv_bias)
        add(u, &w.qkv_b, n + "qkv.bias", {QKV},
            {copy(s + "q_proj.bias", Q), copy(s + "k_proj.bias", KV), copy(s + "v_proj.bias", KV)});
      if (spec.qk_norm) {
        add(u, &w.q_norm_w, n + "q_norm.weight", {spec.head_dim}, {norm(s + "q_norm.weight")});
        add(u, &w.k_norm_w, n + "k_norm.weight", {spec.head_dim}, {norm(s + "k_norm.weight")});
      }
      add(u, &w.proj_w, n + "proj.weight", {C, Q}, {copy(s + "o_proj.weight")});
      if (spec.proj_bias) add(u, &w.proj_b, n + "proj.bias", {C}, {copy(s + "o_proj.bias")});
      if (spec.post_norms) {  // Gemma 3: post_attention_layernorm is the attention output's norm
        add(u, &w.post_attn_norm_w, n + "post_attn_norm.weight", {C}, {norm(p + "post_attention_layernorm.weight")});
        add(u, &w.norm2_w, n + "norm2.weight", {C}, {norm(p + "pre_feedforward_layernorm.weight")});
        add(u, &w.post_mlp_norm_w, n + "post_mlp_norm.weight", {C}, {norm(p + "post_feedforward_layernorm.weight")});
      } else {
        add(u, &w.norm2_w, n + "norm2.weight", {C}, {copy(p + "post_attention_layernorm.weight")});
      }
      if (spec.fused_projections)  // gate_up_proj is [gate; up], as fc
        add(u, &w.fc_w, n + "fc.weight", {2 * I, C}, {copy(p + "mlp.gate_up_proj.weight")});
      else
        add(u, &w.fc_w, n + "fc.weight", {2 * I, C},
            {copy(p + "mlp.gate_proj.weight", I), copy(p + "mlp.up_proj.weight", I)});
      if (spec.mlp_bias)
        add(u, &w.fc_b, n + "fc.bias", {2 * I}, {copy(p + "mlp.gate_proj.bias", I), copy(p + "mlp.up_proj.bias", I)});
      add(u, &w.fc2_w, n + "fc2.weight", {C, I}, {copy(p + "mlp.down_proj.weight")});
      if (spec.mlp_bias) add(u, &w.fc2_b, n + "fc2.bias", {C}, {copy(p + "mlp.down_proj.bias")});
    } else if (spec.arch == Arch::kGpt2) {
      const std::string p = fmt::format("{}h.{}.", b, l);
      add(u, &w.norm1_w, n + "norm1.weight", {C}, {copy(p + "ln_1.weight")});
      add(u, &w.norm1_b, n + "norm1.bias", {C}, {copy(p + "ln_1.bias")});
      add(u, &w.qkv_w, n + "qkv.weight", {QKV, C}, {conv1d(p + "attn.c_attn.weight")});
      add(u, &w.qkv_b, n + "qkv.bias", {QKV}, {copy(p + "attn.c_attn.bias")});
      add(u, &w.proj_w, n + "proj.weight", {C, Q}, {conv1d(p + "attn.c_proj.weight")});
      add(u, &w.proj_b, n + "proj.bias", {C}, {copy(p + "attn.c_proj.bias")});
      add(u, &w.norm2_w, n + "norm2.weight", {C}, {copy(p + "ln_2.weight")});
      add(u, &w.norm2_b, n + "norm2.bias", {C}, {copy(p + "ln_2.bias")});
      add(u, &w.fc_w, n + "fc.weight", {I, C}, {conv1d(p + "mlp.c_fc.weight")});
      add(u, &w.fc_b, n + "fc.bias", {I}, {copy(p + "mlp.c_fc.bias")});
      add(u, &w.fc2_w, n + "fc2.weight", {C, I}, {conv1d(p + "mlp.c_proj.weight")});
      add(u, &w.fc2_b, n + "fc2.bias", {C}, {copy(p + "mlp.c_proj.bias")});
    } else {
      const std::string p = fmt::format("{}encoder.layer.{}.", b, l);
      const std::string s = p + "attention.self.";
      const int64_t KV = spec.attention_config().kv_width();
      add(u, &w.qkv_w, n + "qkv.weight", {QKV, C},
          {copy(s + "query.weight", Q), copy(s + "key.weight", KV), copy(s + "value.weight", KV)});
      add(u, &w.qkv_b, n + "qkv.bias", {QKV},
          {copy(s + "query.bias", Q), copy(s + "key.bias", KV), copy(s + "value.bias", KV)});
      add(u, &w.proj_w, n + "proj.weight", {C, Q}, {copy(p + "attention.output.dense.weight")});
      add(u, &w.proj_b, n + "proj.bias", {C}, {copy(p + "attention.output.dense.bias")});
      add(u, &w.norm1_w, n + "norm1.weight", {C}, {copy(p + "attention.output.LayerNorm.weight")});
      add(u, &w.norm1_b, n + "norm1.bias", {C}, {copy(p + "attention.output.LayerNorm.bias")});
      add(u, &w.fc_w, n + "fc.weight", {I, C}, {copy(p + "intermediate.dense.weight")});
      add(u, &w.fc_b, n + "fc.bias", {I}, {copy(p + "intermediate.dense.bias")});
      add(u, &w.fc2_w, n + "fc2.weight", {C, I}, {copy(p + "output.dense.weight")});
      add(u, &w.fc2_b, n + "fc2.bias", {C}, {copy(p + "output.dense.bias")});
      add(u, &w.norm2_w, n + "norm2.weight", {C}, {copy(p + "output.LayerNorm.weight")});
      add(u, &w.norm2_b, n + "norm2.bias", {C}, {copy(p + "output.LayerNorm.bias")});
    }
    units_.push_back(std::move(u));
  }

  WeightUnit head;
  head.name = "head";
  HeadWeights& h = heads;
  if (spec.is_llama_family()) {
    add(head, &h.final_norm_w, "head.final_norm.weight", {C},
        {spec.norm_plus_one ? plus_one(b + "norm.weight") : copy(b + "norm.weight")});
  } else if (spec.final_norm) {
    add(head, &h.final_norm_w, "head.final_norm.weight", {C}, {copy(b + "ln_f.weight")});
    add(head, &h.final_norm_b, "head.final_norm.bias", {C}, {copy(b + "ln_f.bias")});
  }
  if (has(Component::kLmHead)) add(head, &h.lm_w, "head.lm.weight", {V, C}, {copy("lm_head.weight")});
  if (has(Component::kMlmHead)) {
    const bool bert = spec.arch == Arch::kBert;
    const std::string p = bert ? "cls.predictions." : "lm_head.";
    add(head, &h.mlm_dense_w, "head.mlm.dense.weight", {C, C}, {copy(p + (bert ? "transform.dense.weight" : "dense.weight"))});
    add(head, &h.mlm_dense_b, "head.mlm.dense.bias", {C}, {copy(p + (bert ? "transform.dense.bias" : "dense.bias"))});
    add(head, &h.mlm_norm_w, "head.mlm.norm.weight", {C}, {copy(p + (bert ? "transform.LayerNorm.weight" : "layer_norm.weight"))});
    add(head, &h.mlm_norm_b, "head.mlm.norm.bias", {C}, {copy(p + (bert ? "transform.LayerNorm.bias" : "layer_norm.bias"))});
    add(head, &h.mlm_bias, "head.mlm.bias", {V}, {copy(p + "bias")});
  }
  if (has(Component::kPooler)) {
    add(head, &h.pooler_w, "head.pooler.weight", {C, C}, {copy(b + "pooler.dense.weight")});
    add(head, &h.pooler_b, "head.pooler.bias", {C}, {copy(b + "pooler.dense.bias")});
  }
  if (has(Component::kScore)) {
    PTUNE_CHECK(score_labels > 0, "a score head needs its number of labels");
    add(head, &h.score_w, "head.score.weight", {score_labels, C}, {copy("score.weight")});
  }
  if (head.numel > 0) units_.push_back(std::move(head));
}

void ModelWeights::allocate() {
  // Zeroed: the alignment gaps must hold the same bytes on every rank.
  for (WeightUnit& u : units_) u.bind(Tensor::zeros({u.numel}, DType::kF32));
}

int64_t WeightUnit::parameter_count() const {
  int64_t n = 0;
  for (const Param& p : params) n += p.shape.numel();
  return n;
}

int64_t ModelWeights::parameter_count() const {
  int64_t n = 0;
  for (const WeightUnit& u : units_) n += u.parameter_count();
  return n;
}

std::unique_ptr<ModelWeights> ModelWeights::describe(const ModelSpec& spec, const io::CheckpointReader& checkpoint) {
  // The base model's prefix is whatever makes the word embeddings resolve.
  const std::string word = spec.is_llama_family()  ? "embed_tokens.weight"
                           : spec.arch == Arch::kGpt2 ? "wte.weight"
                                                      : "embeddings.word_embeddings.weight";
  std::string prefix;
  bool found = false;
  for (const std::string p : {"", "transformer.", "bert.", "roberta.", "model."}) {
    if (checkpoint.contains(p + word)) {
      prefix = p;
      found = true;
      break;
    }
  }
  PTUNE_CHECK(found, "{}: no '{}' tensor (with or without a base-model prefix): not a {} checkpoint",
              checkpoint.path(), word, spec.arch_name());

  std::set<Component> components;
  const bool decoder = spec.arch == Arch::kGpt2 || spec.is_llama_family();
  // An untied LM head is read when the checkpoint has one (a
  // *ForSequenceClassification checkpoint has a score head instead).
  if (decoder && !spec.tie_word_embeddings && checkpoint.contains("lm_head.weight"))
    components.insert(Component::kLmHead);
  int64_t score_labels = 0;
  if (decoder && checkpoint.contains("score.weight")) {
    components.insert(Component::kScore);
    const Shape shape = checkpoint.info("score.weight").shape;
    PTUNE_CHECK(shape.dim() == 2 && shape[1] == spec.hidden, "{}: 'score.weight' has shape {}, expected (labels, {})",
                checkpoint.path(), shape.str(), spec.hidden);
    score_labels = shape[0];
  }
  if (spec.arch == Arch::kBert && checkpoint.contains("cls.predictions.transform.dense.weight"))
    components.insert(Component::kMlmHead);
  if (spec.arch == Arch::kRoberta && checkpoint.contains("lm_head.dense.weight")) components.insert(Component::kMlmHead);
  if (!decoder && checkpoint.contains(prefix + "pooler.dense.weight")) components.insert(Component::kPooler);

  auto weights = std::make_unique<ModelWeights>(spec, components, prefix, score_labels);
  // Every rank checks every tensor, read or not: a bad checkpoint fails the
  // same way everywhere.
  for (const WeightUnit& u : weights->units_)
    for (const Param& p : u.params)
      for (const Source& s : p.sources) {
        PTUNE_CHECK(checkpoint.contains(s.name), "{}: missing tensor '{}' (needed for {})", checkpoint.path(), s.name,
                    p.name);
        const Shape expected = source_shape(p, s), got = checkpoint.info(s.name).shape;
        PTUNE_CHECK(got == expected, "{}: tensor '{}' has shape {}, expected {} (for {})", checkpoint.path(), s.name,
                    got.str(), expected.str(), p.name);
      }
  return weights;
}

std::unique_ptr<ModelWeights> ModelWeights::load(const ModelSpec& spec, const io::CheckpointReader& checkpoint,
                                                 const LoadOptions& options) {
  const ShardLayout& layout = options.layout;
  PTUNE_CHECK(layout.ranks >= 1 && layout.rank >= 0 && layout.rank < layout.ranks, "load: part {} of {} ranks",
              layout.rank, layout.ranks);
  auto weights = describe(spec, checkpoint);
  weights->layout_ = layout;
  weights->device_ = options.device;
  weights->dtype_ = options.dtype;
  for (size_t i = 0; i < weights->units_.size(); ++i) {
    WeightUnit& u = weights->units_[i];
    // Zeroed: the alignment gaps and the padding must hold the same bytes
    // on every rank.
    const bool whole = layout.ranks == 1 || i == 0;
    Tensor host = Tensor::zeros({whole ? u.numel : layout.per_rank(u.numel)}, DType::kF32);
    read_unit_range(u, checkpoint, whole ? 0 : layout.begin(u.numel), whole ? u.numel : layout.end(u.numel),
                    host.data<float>());
    Tensor held = placed(host, options.device, options.dtype);
    if (whole)
      u.bind(held);
    else
      u.shard = std::move(held);
  }
  return weights;
}

std::unique_ptr<ModelWeights> ModelWeights::random(const ModelSpec& spec, std::set<Component> components, Rng& rng) {
  auto weights = std::make_unique<ModelWeights>(spec, std::move(components), default_prefix(spec.arch));
  weights->allocate();
  for (WeightUnit& u : weights->units_) {
    for (Param& p : u.params) {
      Tensor& t = *p.slot;
      const bool norm_weight = p.name.find("norm") != std::string::npos && p.name.ends_with(".weight");
      if (p.shape.dim() == 2) {
        rng.fill_normal(t, 0.0f, spec.initializer_range);
      } else if (norm_weight) {
        for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 1.0f;
      } else {
        t.zero_();
      }
    }
  }
  return weights;
}

std::vector<std::pair<std::string, Tensor>> ModelWeights::to_checkpoint() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const WeightUnit& u : units_) {
    PTUNE_CHECK(u.flat.defined() && u.flat.device().is_cpu() && u.flat.dtype() == DType::kF32,
                "to_checkpoint: unit {} is not whole in f32 on the CPU", u.name);
    for (const Param& p : u.params) {
      const int64_t cols = p.shape.dim() == 2 ? p.shape[1] : 1;
      int64_t row = 0;
      for (const Source& s : p.sources) {
        const int64_t rows = s.rows;
        const float* src = p.slot->data<float>() + row * cols;
        row += rows;
        const Shape shape = source_shape(p, s);
        Tensor t = Tensor::empty(shape, DType::kF32);
        // The inverse of reading it: a transpose is its own inverse; 1 + w goes back to w.
        const Transform layout = s.transform == Transform::kTranspose ? Transform::kTranspose : Transform::kCopy;
        read_source(t.data<float>(), Tensor::borrow(const_cast<float*>(src), shape, DType::kF32), layout, shape[0],
                    shape.dim() == 2 ? shape[1] : 1);
        if (s.transform == Transform::kPlusOne)
          for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] -= 1.0f;
        out.emplace_back(s.name, std::move(t));
      }
    }
  }
  return out;
}

}  // namespace ptune::model
