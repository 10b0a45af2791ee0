#include "framework/peft/prompt_model.h"

#include <algorithm>

#include "framework/ops/elementwise.h"
#include "framework/ops/embedding.h"
#include "framework/peft/prompt_init.h"

namespace ptune::peft {

namespace {

int64_t kv_width(const model::ModelSpec& spec) { return spec.kv_heads * spec.head_dim; }

}  // namespace

PromptModel::PromptModel(const PromptConfig& config, model::Transformer& model, ParameterSet& params)
    : config_(config), model_(model) {
  const model::ModelSpec& spec = model.spec();
  PTUNE_CHECK(config.num_virtual_tokens > 0, "method.num_virtual_tokens must be positive");
  EncoderDims dims{config.num_virtual_tokens, spec.hidden, spec.hidden};
  if (config.placement == Placement::kKvPrefix) {
    if (config.layers.empty()) {
      for (int64_t l = 0; l < spec.layers; ++l) layers_.push_back(l);
    } else {
      layers_ = config.layers;
      std::sort(layers_.begin(), layers_.end());
      for (int64_t l : layers_)
        PTUNE_CHECK(l >= 0 && l < spec.layers, "method.layers: layer {} does not exist (the model has {} layers)", l,
                    spec.layers);
      PTUNE_CHECK(std::adjacent_find(layers_.begin(), layers_.end()) == layers_.end(),
                  "method.layers lists a layer twice");
    }
    dims.out_width = int64_t(layers_.size()) * 2 * kv_width(spec);
    // peft: a config with num_key_value_heads (the LLaMA family) makes the
    // prefix's token_dim kv_heads·head_dim (utils/other.py, prefix tuning).
    if (spec.is_llama_family()) dims.token_dim = kv_width(spec);
  }
  encoder_ = PromptEncoder::create(config, dims, params);
}

void PromptModel::init(Rng& rng, const std::vector<int32_t>& text_ids) {
  encoder_->init(rng);
  if (config_.placement != Placement::kInput || config_.encoder != Encoder::kNone) return;
  const Tensor& words = model_.weights().embeddings.word;
  switch (config_.init) {
    case PromptInit::kRandom: break;
    case PromptInit::kSampleVocab: init_from_vocab(encoder_->embedding(), words, rng); break;
    case PromptInit::kText:
      PTUNE_CHECK(!text_ids.empty(), "method.init_text tokenizes to no tokens");
      init_from_token_ids(encoder_->embedding(), words, text_init_ids(text_ids, config_.num_virtual_tokens));
      break;
  }
}

void PromptModel::split_prefix(const Tensor& prompt, Arena& arena) {
  // prompt (P, Lp·2·W) f32: slot s holds layer layers_[s]'s keys then values,
  // each becoming a (P, W) tensor in the model's dtype.
  const model::ModelSpec& spec = model_.spec();
  const int64_t P = config_.num_virtual_tokens, W = kv_width(spec);
  prefix_.keys.assign(size_t(spec.layers), Tensor());
  prefix_.values.assign(size_t(spec.layers), Tensor());
  for (size_t s = 0; s < layers_.size(); ++s) {
    for (int kv = 0; kv < 2; ++kv) {
      Tensor t = arena.alloc({P, W}, model_.dtype());
      ops::copy_columns(t, 0, prompt, (2 * int64_t(s) + kv) * W, W, false);
      (kv ? prefix_.values : prefix_.keys)[size_t(layers_[s])] = t;
    }
  }
}

Tensor PromptModel::forward(const Tensor& ids, const Tensor& type_ids, const Tensor& attention_mask, Arena& arena,
                            Mode mode, Rng& rng, std::span<const int32_t> rows) {
  const model::ModelSpec& spec = model_.spec();
  const int64_t B = ids.size(0), T = ids.size(1), C = spec.hidden;
  PTUNE_CHECK(ids.device().is_cpu(), "PromptModel::forward takes the batch's host ids");
  ids_ = arena.copy_of(ids);  // on the model's device
  prompt_ = arena.alloc({config_.num_virtual_tokens, encoder_->dims().out_width});
  encoder_->forward(prompt_, arena, mode, &rng);

  model::ModelInputs in;
  in.input_embeds = arena.alloc({B, T, C}, model_.dtype());
  host_positions_.resize(size_t(B * T));
  in.position_ids = Tensor::borrow(host_positions_.data(), {B, T}, DType::kI32);  // the model uploads it
  in.token_type_ids = type_ids;
  in.attention_mask = attention_mask;
  in.for_backward = mode != Mode::kInference;
  if (!rows.empty())
    in.rows = Tensor::borrow(const_cast<int32_t*>(rows.data()), {int64_t(rows.size())}, DType::kI32);
  if (config_.placement == Placement::kInput) {
    // The f32 prompt rows enter a bf16 model as bf16.
    Tensor rows = prompt_;
    if (model_.dtype() != rows.dtype()) {
      rows = arena.alloc(prompt_.shape(), model_.dtype());
      ops::convert(rows, prompt_);
    }
    ops::prompt_embedding_forward(in.input_embeds, ids_, model_.weights().embeddings.word, rows,
                                  model_.embed_scale());
    // As transformers numbers inputs_embeds: 0…T−1 (+ RoBERTa's offset),
    // virtual tokens included.
    model_.default_position_ids(in.position_ids, Tensor(), 0);
  } else {
    dropout_applied_ = mode == Mode::kTrain && config_.prefix_dropout > 0.0f;
    Tensor prefix = prompt_;
    if (dropout_applied_) {
      dropout_seed_ = rng.seed();
      dropout_offset_ = rng.reserve(uint64_t(prompt_.numel()));
      prefix = arena.alloc(prompt_.shape());
      ops::dropout_forward(prefix, prompt_, config_.prefix_dropout, dropout_seed_, dropout_offset_);
    }
    split_prefix(prefix, arena);
    model_.embed_tokens(in.input_embeds, ids_);
    model_.default_position_ids(in.position_ids, ids, config_.num_virtual_tokens);
    in.prefix = &prefix_;
  }
  return model_.forward(in, arena);
}

void PromptModel::backward(const Tensor& dhidden, Arena& arena) {
  const model::ModelSpec& spec = model_.spec();
  const int64_t B = ids_.size(0), T = ids_.size(1), C = spec.hidden;
  Tensor dprompt = arena.zeros(prompt_.shape());
  model::ModelGrads grads;
  if (config_.placement == Placement::kInput) {
    grads.input_embeds = arena.zeros({B, T, C}, model_.dtype());
    model_.backward(dhidden, grads, arena);
    ops::prompt_embedding_backward(dprompt, grads.input_embeds, ids_);
  } else {
    const int64_t P = config_.num_virtual_tokens, W = kv_width(spec);
    model::KvPrefix dprefix;
    dprefix.keys.assign(size_t(spec.layers), Tensor());
    dprefix.values.assign(size_t(spec.layers), Tensor());
    for (int64_t l : layers_) {
      dprefix.keys[size_t(l)] = arena.zeros({P, W});
      dprefix.values[size_t(l)] = arena.zeros({P, W});
    }
    grads.prefix = &dprefix;
    model_.backward(dhidden, grads, arena);
    // Gather the per-layer gradients back into the encoder's layout.
    Tensor dprefix_flat = dropout_applied_ ? arena.zeros(prompt_.shape()) : dprompt;
    for (size_t s = 0; s < layers_.size(); ++s)
      for (int kv = 0; kv < 2; ++kv)
        ops::copy_columns(dprefix_flat, (2 * int64_t(s) + kv) * W, (kv ? dprefix.values : dprefix.keys)[size_t(layers_[s])],
                          0, W, true);
    if (dropout_applied_)
      ops::dropout_backward(dprompt, dprefix_flat, config_.prefix_dropout, dropout_seed_, dropout_offset_);
  }
  encoder_->backward(dprompt, arena);
}

Tensor PromptModel::prompt_embeddings(Arena& arena) {
  Tensor out = arena.alloc({config_.num_virtual_tokens, encoder_->dims().out_width});
  encoder_->forward(out, arena, Mode::kEval, nullptr);
  return out.to(Device::cpu());
}

}  // namespace ptune::peft
