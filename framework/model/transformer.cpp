#include "framework/model/transformer.h"

#include <algorithm>

#include "framework/io/checkpoint.h"
#include "framework/ops/attention.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/embedding.h"
#include "framework/ops/layernorm.h"
#include "framework/ops/linear.h"
#include "framework/ops/rope.h"
#include "framework/ops/swiglu.h"

namespace ptune::model {

int64_t KvPrefix::length() const {
  for (const Tensor& k : keys)
    if (k.defined()) return k.size(0);
  return 0;
}

Transformer::Transformer(const ModelSpec& spec, std::unique_ptr<ModelWeights> weights)
    : spec_(spec), weights_(std::move(weights)), attention_(spec.attention_config()) {
  PTUNE_CHECK(!spec.post_norms || spec.placement == NormPlacement::kPre, "post_norms needs pre-LN blocks");
  saved_.resize(size_t(spec.layers));
}

std::unique_ptr<Transformer> Transformer::load(const std::string& dir, const LoadOptions& options) {
  ModelSpec spec = ModelSpec::from_directory(dir);
  auto checkpoint = io::CheckpointReader::open(dir);
  return std::make_unique<Transformer>(spec, ModelWeights::load(spec, checkpoint, options));
}

void Transformer::embed_tokens(const Tensor& out, const Tensor& ids) const {
  ops::embedding_forward(out, ids, weights_->embeddings.word);
  if (spec_.embed_scale != 1.0f) ops::scale_(out, embed_scale());
}

float Transformer::embed_scale() const {
  return dtype() == DType::kBF16 ? bf16_to_f32(f32_to_bf16(spec_.embed_scale)) : spec_.embed_scale;
}

void Transformer::default_position_ids(const Tensor& out, const Tensor& ids, int64_t prefix_length) const {
  PTUNE_CHECK(out.device().is_cpu() && (!ids.defined() || ids.device().is_cpu()),
              "default_position_ids works on host tensors");
  const int64_t B = out.size(0), T = out.size(1);
  int32_t* pos = out.data<int32_t>();
  const bool by_padding = spec_.arch == Arch::kRoberta && ids.defined();
  for (int64_t b = 0; b < B; ++b) {
    int64_t real = 0;
    for (int64_t t = 0; t < T; ++t) {
      int64_t p = spec_.position_offset + prefix_length + t;
      if (by_padding) {
        // transformers' create_position_ids_from_input_ids: padding keeps
        // padding_idx, real tokens count from padding_idx + 1 (+ P).
        const bool is_pad = ids.data<int32_t>()[b * T + t] == spec_.pad_token_id;
        real += !is_pad;
        p = is_pad ? spec_.pad_token_id : spec_.pad_token_id + prefix_length + real;
      }
      PTUNE_CHECK(spec_.positions == PositionKind::kRope || p < spec_.max_positions, "position {} is beyond the model's {} positions (sequence too long)", p,
                  spec_.max_positions);
      pos[b * T + t] = int32_t(p);
    }
  }
}

Tensor Transformer::forward(const ModelInputs& in, Arena& arena) {
  const int64_t B = in.input_embeds.size(0), T = in.input_embeds.size(1), C = spec_.hidden;
  const DType act = dtype();
  check_tensor(in.input_embeds, "input_embeds", {B, T, C}, act);
  check_tensor(in.position_ids, "position_ids", {B, T}, DType::kI32);
  if (in.attention_mask.defined()) check_tensor(in.attention_mask, "attention_mask", {B, T}, DType::kI32);
  PTUNE_CHECK(arena.device() == device() && in.input_embeds.device() == device(),
              "forward: the model runs on {}, its arena is on {} and input_embeds on {}", device().str(),
              arena.device().str(), in.input_embeds.device().str());
  batch_ = B;
  seq_ = T;
  const EmbeddingWeights& e = weights_->embeddings;
  const Tensor position_ids = arena.copy_of(in.position_ids);
  mask_ = arena.copy_of(in.attention_mask);
  rows_ = Tensor();
  if (in.rows.defined()) {
    PTUNE_CHECK(in.rows.device().is_cpu() && in.rows.dtype() == DType::kI32 && in.rows.dim() == 1,
                "rows: (N) i32 on the host, got {} {} on {}", in.rows.shape().str(), dtype_name(in.rows.dtype()),
                in.rows.device().str());
    // Checked here, on the host, once: the gathers and scatters below trust them.
    row_seen_.assign(size_t(B * T), 0);
    for (int64_t i = 0; i < in.rows.numel(); ++i) {
      const int32_t r = in.rows.data<int32_t>()[i];
      PTUNE_CHECK(r >= 0 && r < B * T && !row_seen_[size_t(r)], "rows: row {} at {} is outside [0, {}) or repeated",
                  r, i, B * T);
      row_seen_[size_t(r)] = 1;
    }
    rows_ = arena.copy_of(in.rows);
  }

  // Embeddings: words (given) + positions (+ token types), then BERT's norm.
  Tensor x = arena.alloc({B, T, C}, act);
  x.copy_from(in.input_embeds);
  if (spec_.positions == PositionKind::kLearned) {
    ops::embedding_add(x, position_ids, e.position);
  } else {
    // RoPE: positions rotate queries and keys inside every block. They are
    // range-checked (and their maximum taken) on the host.
    const int32_t* pos = in.position_ids.data<int32_t>();
    if (!in.position_ids.device().is_cpu()) {
      host_positions_.resize(size_t(B * T));
      Tensor::borrow(host_positions_.data(), {B, T}, DType::kI32).copy_from(in.position_ids);
      pos = host_positions_.data();
    }
    int64_t max_pos = 0;
    for (int64_t i = 0; i < B * T; ++i) {
      PTUNE_CHECK(pos[i] >= 0, "position_ids: negative position {} at {}", pos[i], i);
      max_pos = std::max<int64_t>(max_pos, pos[i]);
    }
    positions_ = position_ids;
    const auto upload = [&](bool local) {
      spec_.rope_inv_freq(max_pos, local, host_inv_freq_);
      Tensor t = arena.alloc({int64_t(host_inv_freq_.size())});
      t.copy_from(Tensor::borrow(host_inv_freq_.data(), {int64_t(host_inv_freq_.size())}, DType::kF32));
      return t;
    };
    rope_inv_freq_ = upload(false);
    rope_local_inv_freq_ = spec_.local_layers.empty() ? Tensor() : upload(true);
  }
  if (e.token_type.defined()) {
    if (in.token_type_ids.defined()) {
      check_tensor(in.token_type_ids, "token_type_ids", {B, T}, DType::kI32);
      ops::embedding_add(x, arena.copy_of(in.token_type_ids), e.token_type);
    } else {
      Tensor zeros = arena.zeros({B, T}, DType::kI32);
      ops::embedding_add(x, zeros, e.token_type);
    }
  }
  if (spec_.embedding_norm) {
    embed_sum_ = x;
    embed_mean_ = arena.alloc({B * T});
    embed_rstd_ = arena.alloc({B * T});
    x = arena.alloc({B, T, C}, act);
    ops::norm_forward(spec_.norm, x, embed_mean_, embed_rstd_, embed_sum_, e.norm_w, e.norm_b, spec_.norm_eps);
  }

  // The embeddings unit (0) is done with until backward's embedding norm.
  if (gate_) gate_->release(0, WeightGate::Pass::kForward);

  Tensor spare;  // evaluation: the last block's input, dead once it ran, takes the next output
  for (int64_t l = 0; l < spec_.layers; ++l) {
    LayerActivations& a = saved_[size_t(l)];
    a.input = x;
    a.prefix_k = in.prefix && size_t(l) < in.prefix->keys.size() ? in.prefix->keys[size_t(l)] : Tensor();
    a.prefix_v = in.prefix && size_t(l) < in.prefix->values.size() ? in.prefix->values[size_t(l)] : Tensor();
    a.rows = l + 1 == spec_.layers ? rows_ : Tensor();
    x = a.rows.defined() ? arena.alloc({a.rows.size(0), C}, act)
        : spare.defined() ? spare
                          : arena.alloc({B, T, C}, act);
    // Block l is unit 1 + l; the gate may gather it (and prefetch l + 1).
    if (gate_) gate_->acquire(1 + l, l + 1 < spec_.layers ? 2 + l : -1, WeightGate::Pass::kForward);
    const Arena::Mark block = arena.mark();
    layer_forward(l, a, x, mask_, arena);
    if (!in.for_backward) {
      arena.rewind(block);
      spare = a.input;
      a = LayerActivations{};
    } else if (recompute_) {  // keep the block's input (and prefix) only; backward reruns it
      arena.rewind(block);
      a = a.inputs_only();
    }
    if (gate_) gate_->release(1 + l, WeightGate::Pass::kForward);
  }

  if (spec_.final_norm) {
    final_input_ = x;
    final_mean_ = arena.alloc({x.numel() / C});
    final_rstd_ = arena.alloc({x.numel() / C});
    x = arena.alloc(x.shape(), act);
    const HeadWeights& h = weights_->heads;
    ops::norm_forward(spec_.norm, x, final_mean_, final_rstd_, final_input_, h.final_norm_w, h.final_norm_b,
                      spec_.norm_eps);
  }
  return x;
}

void Transformer::layer_forward(int64_t l, LayerActivations& a, const Tensor& out, const Tensor& mask, Arena& arena) {
  const BlockWeights& w = weights_->blocks[size_t(l)];
  const int64_t B = batch_, T = seq_, C = spec_.hidden, I = spec_.intermediate;
  const int64_t P = a.prefix_k.defined() ? a.prefix_k.size(0) : 0;
  const int64_t FC = spec_.gated_mlp ? 2 * I : I;  // SwiGLU: [gate; up]
  const ops::NormKind nk = spec_.norm;
  const float eps = spec_.norm_eps;
  const bool pre = spec_.placement == NormPlacement::kPre;
  const DType act = dtype();  // activations; norm statistics and attention state stay f32
  // Past the attention, the rows this block computes: all (B, T, ·), or the
  // selected (N, ·).
  const bool picked = a.rows.defined();
  const int64_t M = picked ? a.rows.size(0) : B * T;
  const auto past_attention = [&](int64_t width) { return picked ? Shape{M, width} : Shape{B, T, width}; };

  a.qkv = arena.alloc({B, T, attention_.qkv_width()}, act);
  a.probs = arena.alloc(ops::attention_saved_shape(device(), B, T, P, attention_));
  a.attn = arena.alloc({B, T, attention_.q_width()}, act);
  a.residual = arena.alloc(past_attention(C), act);
  a.norm1 = arena.alloc(pre ? Shape{B, T, C} : past_attention(C), act);
  a.mean1 = arena.alloc({pre ? B * T : M});
  a.rstd1 = arena.alloc({pre ? B * T : M});
  a.norm2 = arena.alloc(past_attention(C), act);
  a.mean2 = arena.alloc({M});
  a.rstd2 = arena.alloc({M});
  a.fc = arena.alloc(past_attention(FC), act);
  Tensor proj = arena.alloc(past_attention(C), act);

  // Attention sub-block.
  if (pre) ops::norm_forward(nk, a.norm1, a.mean1, a.rstd1, a.input, w.norm1_w, w.norm1_b, eps);
  ops::linear_forward(a.qkv, pre ? a.norm1 : a.input, w.qkv_w, w.qkv_b);
  if (spec_.qk_norm) {  // Qwen3: every query and key head RMS-normalised, before RoPE
    const int64_t H = attention_.heads, KVH = attention_.kv_heads, D = attention_.head_dim;
    a.q_in = arena.alloc({B * T * H, D}, act);
    a.k_in = arena.alloc({B * T * KVH, D}, act);
    a.q_rstd = arena.alloc({B * T * H});
    a.k_rstd = arena.alloc({B * T * KVH});
    ops::head_rms_norm_forward(a.qkv, 0, a.q_in, a.q_rstd, w.q_norm_w, eps);
    ops::head_rms_norm_forward(a.qkv, H * D, a.k_in, a.k_rstd, w.k_norm_w, eps);
  }
  // Rotated in place: attention and backward see the rotated q and k.
  if (spec_.rotates(l)) ops::rope_forward(a.qkv, positions_, rope_freq(l), attention_, rope_scale(l));
  ops::attention_forward(a.attn, a.probs, a.qkv, a.prefix_k, a.prefix_v, mask, spec_.attention_config(l));
  // What the projection and the skip connection read: the selected rows of
  // the attention output and of the block's input, (N, ·), or all of them.
  Tensor attn = a.attn, skip = a.input;
  if (picked) {
    const int64_t HD = attention_.q_width();
    attn = arena.alloc({M, HD}, act);
    skip = arena.alloc({M, C}, act);
    ops::embedding_forward(attn, a.rows, a.attn.view({B * T, HD}));
    ops::embedding_forward(skip, a.rows, a.input.view({B * T, C}));
  }
  ops::linear_forward(proj, attn, w.proj_w, w.proj_b);
  if (spec_.post_norms) {  // Gemma 3: the attention's output is normalised before the residual add
    a.proj = proj;
    a.rstd3 = arena.alloc({M});
    proj = arena.alloc(past_attention(C), act);
    ops::norm_forward(nk, proj, Tensor(), a.rstd3, a.proj, w.post_attn_norm_w, Tensor(), eps);
  }
  // residual = input + proj and the norm that reads it, as one op (one pass
  // over the residual stream on CUDA): pre-LN's norm2 feeds the MLP, post-LN's
  // norm1 is the sub-block's output.
  if (pre) {
    ops::residual_norm_forward(nk, a.norm2, a.residual, a.mean2, a.rstd2, proj, skip, w.norm2_w, w.norm2_b, eps);
  } else {
    ops::residual_norm_forward(nk, a.norm1, a.residual, a.mean1, a.rstd1, proj, skip, w.norm1_w, w.norm1_b, eps);
  }

  // MLP sub-block: pre-LN reads norm2(residual), post-LN reads norm1.
  // Backward reads fc and, post-LN, norm2's statistics: a pre-LN rerun
  // stops at fc (the frozen fc2 has no weight gradient that needs act) —
  // unless the MLP's output has a norm of its own, whose backward reads it.
  const bool whole = out.defined() || !pre || spec_.post_norms;
  const Tensor& mlp_in = pre ? a.norm2 : a.norm1;
  if (spec_.gated_mlp) {
    ops::linear_forward(a.fc, mlp_in, w.fc_w, w.fc_b);
    if (whole) {
      a.act = arena.alloc(past_attention(I), act);
      ops::gated_forward(spec_.activation, a.act, a.fc);
    }
  } else {  // one fused GEMM on CUDA; a.fc keeps the pre-activation for backward
    a.act = arena.alloc(past_attention(I), act);
    ops::linear_activation_forward(spec_.activation, a.act, a.fc, mlp_in, w.fc_w, w.fc_b);
  }
  if (!whole) return;
  Tensor mlp = arena.alloc(past_attention(C), act);
  ops::linear_forward(mlp, a.act, w.fc2_w, w.fc2_b);
  if (spec_.post_norms) {  // Gemma 3: and the MLP's output too
    a.mlp = mlp;
    a.rstd4 = arena.alloc({M});
    mlp = arena.alloc(past_attention(C), act);
    ops::norm_forward(nk, mlp, Tensor(), a.rstd4, a.mlp, w.post_mlp_norm_w, Tensor(), eps);
  }
  if (pre) {
    if (out.defined()) ops::add_forward(out, a.residual, mlp);  // (a post_norms rerun has no out)
  } else {
    a.residual2 = arena.alloc(past_attention(C), act);  // = norm1 + mlp, normalised into out
    const Tensor y = out.defined() ? out : arena.alloc(past_attention(C), act);
    ops::residual_norm_forward(nk, y, a.residual2, a.mean2, a.rstd2, mlp, a.norm1, w.norm2_w, w.norm2_b, eps);
  }
}

void Transformer::backward(const Tensor& dhidden, const ModelGrads& grads, Arena& arena) {
  const int64_t B = batch_, T = seq_, C = spec_.hidden;
  const DType act = dtype();
  const Shape out_shape = rows_.defined() ? Shape{rows_.size(0), C} : Shape{B, T, C};
  check_tensor(dhidden, "dhidden", out_shape, act);
  const bool want_inputs = grads.input_embeds.defined();
  if (want_inputs) check_tensor(grads.input_embeds, "d input_embeds", {B, T, C}, act);

  // The lowest layer whose gradient anyone needs; nothing below it runs.
  int64_t lowest = spec_.layers;
  if (want_inputs) lowest = 0;
  if (grads.prefix) {
    for (int64_t l = 0; l < spec_.layers && l < lowest; ++l) {
      const size_t i = size_t(l);
      const bool k = i < grads.prefix->keys.size() && grads.prefix->keys[i].defined();
      const bool v = i < grads.prefix->values.size() && grads.prefix->values[i].defined();
      if (k || v) lowest = l;
    }
  }
  if (lowest == spec_.layers) return;

  // dx: the residual stream's gradient, one buffer from here down (pre-LN
  // blocks update it in place), so never the caller's dhidden itself.
  Tensor dx = arena.zeros(out_shape, act);
  // The last block ran on the selected rows: its input's gradient, (B, T, C),
  // needs a buffer of its own (below the blocks' scratch).
  const Tensor dinput = rows_.defined() ? arena.alloc({B, T, C}, act) : Tensor();
  if (spec_.final_norm) {
    const HeadWeights& h = weights_->heads;
    ops::norm_backward(spec_.norm, dx, Tensor(), Tensor(), dhidden, final_input_, h.final_norm_w, final_mean_,
                       final_rstd_);
  } else {
    ops::accumulate(dx, dhidden);
  }

  for (int64_t l = spec_.layers - 1; l >= lowest; --l) {
    const size_t i = size_t(l);
    Tensor dk, dv;
    if (grads.prefix && i < grads.prefix->keys.size()) dk = grads.prefix->keys[i];
    if (grads.prefix && i < grads.prefix->values.size()) dv = grads.prefix->values[i];
    const bool need_input = l > lowest || want_inputs;
    if (gate_) gate_->acquire(1 + l, l > lowest ? l : -1, WeightGate::Pass::kBackward);
    // The block's gradient scratch dies with it (dx is updated in its own
    // buffer): the next block reuses the bytes.
    const Arena::Mark scratch = arena.mark();
    if (recompute_) layer_forward(l, saved_[i], Tensor(), mask_, arena);
    dx = layer_backward(l, saved_[i], dx, need_input, dk, dv, saved_[i].rows.defined() ? dinput : Tensor(), arena);
    arena.rewind(scratch);
    if (recompute_) saved_[i] = saved_[i].inputs_only();  // the rerun's views are gone
    if (gate_) gate_->release(1 + l, WeightGate::Pass::kBackward);
  }
  if (!want_inputs) return;

  if (spec_.embedding_norm) {
    if (gate_) gate_->acquire(0, -1, WeightGate::Pass::kBackward);
    const EmbeddingWeights& e = weights_->embeddings;
    ops::norm_backward(spec_.norm, grads.input_embeds, Tensor(), Tensor(), dx, embed_sum_, e.norm_w, embed_mean_,
                       embed_rstd_);
    if (gate_) gate_->release(0, WeightGate::Pass::kBackward);
  } else {
    ops::accumulate(grads.input_embeds, dx);
  }
}

// Buffers whose first writer writes them whole are allocated, not zeroed,
// and written with GradMode::kWrite; only buffers that a norm's backward
// accumulates into are zeroed. Every value is the one the
// zero-then-accumulate order gives (0 + v = v).
Tensor Transformer::layer_backward(int64_t l, LayerActivations& a, const Tensor& dout, bool need_input,
                                   const Tensor& dprefix_k, const Tensor& dprefix_v, const Tensor& dinput,
                                   Arena& arena) {
  const BlockWeights& w = weights_->blocks[size_t(l)];
  const int64_t B = batch_, T = seq_, C = spec_.hidden, I = spec_.intermediate, HD = attention_.q_width();
  const ops::NormKind nk = spec_.norm;
  const bool pre = spec_.placement == NormPlacement::kPre;
  const DType act = dtype();
  const bool picked = a.rows.defined();  // past the attention, the selected rows (N, ·) only
  const Shape rows_c = dout.shape();     // (B, T, C) or (N, C)
  Shape rows_i = rows_c;                 // the MLP's width on those rows
  rows_i[-1] = I;
  using ops::GradMode;

  // dresidual: d(residual stream after attention). Pre-LN, out = residual +
  // mlp(norm2(residual)), so it is dout plus norm2's share: dout's own buffer,
  // added to once the MLP has read dout. Post-LN it is what norm1 passes back.
  Tensor dresidual;
  Tensor dmlp_out;  // gradient at the MLP's output
  Tensor dmlp_in;   // gradient at the MLP's input (norm2 pre-LN, norm1 post-LN)
  GradMode mlp_in_mode = GradMode::kWrite;
  if (pre) {
    dresidual = dout;
    dmlp_out = dout;
    dmlp_in = arena.alloc(rows_c, act);
    if (spec_.post_norms) {  // through the norm of the MLP's output first
      dmlp_out = arena.zeros(rows_c, act);  // norm_backward accumulates
      ops::norm_backward(nk, dmlp_out, Tensor(), Tensor(), dout, a.mlp, w.post_mlp_norm_w, Tensor(), a.rstd4);
    }
  } else {
    // out = norm2(norm1 + mlp): both branches see dresidual2. The MLP reads
    // it first; then, as dmlp_in, it takes the MLP's input gradient on top
    // (the skip connection around the MLP).
    Tensor dresidual2 = arena.zeros(rows_c, act);  // norm_backward accumulates
    ops::norm_backward(nk, dresidual2, Tensor(), Tensor(), dout, a.residual2, w.norm2_w, a.mean2, a.rstd2);
    dmlp_out = dresidual2;
    dmlp_in = dresidual2;
    mlp_in_mode = GradMode::kAdd;
  }

  Tensor dfc;
  if (spec_.gated_mlp) {
    Tensor dact = arena.alloc(rows_i, act);
    ops::linear_backward_input(dact, dmlp_out, w.fc2_w, GradMode::kWrite);
    dfc = arena.alloc(a.fc.shape(), act);
    ops::gated_backward(spec_.activation, dfc, dact, a.fc, GradMode::kWrite);
  } else {
    // dfc = f'(fc) ⊙ (dmlp_out · fc2_w) is written whole (one DGELU GEMM on
    // CUDA), so neither buffer needs zeroing; dact is the unfused path's scratch.
    Tensor dact = arena.alloc(rows_i, act);
    dfc = arena.alloc(a.fc.shape(), act);
    ops::linear_activation_backward_input(spec_.activation, dfc, dact, dmlp_out, w.fc2_w, a.fc);
  }
  ops::linear_backward_input(dmlp_in, dfc, w.fc_w, mlp_in_mode);

  if (pre) {
    ops::norm_backward(nk, dresidual, Tensor(), Tensor(), dmlp_in, a.residual, w.norm2_w, a.mean2, a.rstd2);
  } else {
    // dout was last read by norm2's backward: its buffer takes d(residual),
    // which norm_backward accumulates into.
    dresidual = dout;
    dresidual.zero_();
    ops::norm_backward(nk, dresidual, Tensor(), Tensor(), dmlp_in, a.residual, w.norm1_w, a.mean1, a.rstd1);
  }

  // residual = input + proj(attn): the skip passes dresidual straight down,
  // so dresidual becomes d(input) once the attention branch has read it.
  Tensor dproj = dresidual;  // the gradient at the projection's output
  if (spec_.post_norms) {    // Gemma 3: through the norm of the attention's output
    dproj = arena.zeros(rows_c, act);
    ops::norm_backward(nk, dproj, Tensor(), Tensor(), dresidual, a.proj, w.post_attn_norm_w, Tensor(), a.rstd3);
  }
  Tensor dattn = arena.alloc({B, T, HD}, act);
  if (picked) {  // the rows the projection did not read get no gradient
    Tensor drows = arena.alloc({dproj.size(0), HD}, act);
    ops::linear_backward_input(drows, dproj, w.proj_w, GradMode::kWrite);
    dattn.zero_();
    ops::scatter_add_rows(dattn.view({B * T, HD}), drows, a.rows);
  } else {
    ops::linear_backward_input(dattn, dproj, w.proj_w, GradMode::kWrite);
  }
  Tensor dqkv = arena.alloc({B, T, attention_.qkv_width()}, act);
  const Tensor dscores = ops::attention_needs_scores(device()) ? arena.alloc(a.probs.shape()) : Tensor();
  ops::attention_backward(dqkv, dprefix_k, dprefix_v, dscores, dattn, a.attn, a.qkv, a.probs, a.prefix_k,
                          a.prefix_v, spec_.attention_config(l), GradMode::kWrite);
  if (!need_input) return Tensor();  // the lowest prompt layer: nothing below needs dx
  // Un-rotate ∂q, ∂k (prefix gradients above are already unrotated).
  if (spec_.rotates(l)) ops::rope_backward(dqkv, positions_, rope_freq(l), attention_, rope_scale(l));
  if (spec_.qk_norm) {  // then through the q and k norms
    ops::head_rms_norm_backward(dqkv, 0, a.q_in, a.q_rstd, w.q_norm_w);
    ops::head_rms_norm_backward(dqkv, HD, a.k_in, a.k_rstd, w.k_norm_w);
  }
  // d(input) = the skip's share (dresidual) + the attention branch's.
  Tensor dx = dresidual;
  if (picked) {
    dx = dinput;
    dx.zero_();
    ops::scatter_add_rows(dx.view({B * T, C}), dresidual, a.rows);
  }
  if (pre) {
    Tensor dnorm1 = arena.alloc({B, T, C}, act);
    ops::linear_backward_input(dnorm1, dqkv, w.qkv_w, GradMode::kWrite);
    ops::norm_backward(nk, dx, Tensor(), Tensor(), dnorm1, a.input, w.norm1_w, a.mean1, a.rstd1);
  } else {
    ops::linear_backward_input(dx, dqkv, w.qkv_w);
  }
  return dx;
}

}  // namespace ptune::model
