// The one transformer: GPT-2, BERT and RoBERTa (and, through ModelSpec,
// more) share this forward and backward. Backward computes activation
// gradients only — dX = dY·W through every frozen layer, never a weight
// gradient — and stops below the lowest layer that holds a prompt.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "framework/core/arena.h"
#include "framework/core/tensor.h"
#include "framework/model/spec.h"
#include "framework/model/weights.h"

namespace ptune::model {

// Per-layer virtual keys and values (prefix tuning, P-Tuning v2): for layer
// l, keys[l] and values[l] are (P, KVH·D) shared by the batch, or undefined
// when layer l has no prefix.
struct KvPrefix {
  std::vector<Tensor> keys, values;
  int64_t length() const;  // P (0 without a prefix)
};

// input_embeds live on the model's device in its dtype; the integer inputs
// may be host tensors (the batch as collated): forward copies them over.
struct ModelInputs {
  Tensor input_embeds;    // (B, T, C) word-embedding rows; prompt rows may be spliced in
  Tensor position_ids;    // (B, T) i32
  Tensor token_type_ids;  // (B, T) i32; undefined = type 0 everywhere
  Tensor attention_mask;  // (B, T) i32, 1 = real token; undefined = all real
  const KvPrefix* prefix = nullptr;
  // false (evaluation): no backward follows, so each block's activations
  // are freed once it has run and its input buffer takes the next block's
  // output: the forward's peak is one block's, not every block's
  // (layer_qkv() is then undefined).
  bool for_backward = true;
  // (N) i32 on the host, never empty: the flat rows b·T + t of the last
  // hidden state the caller reads (a task head's positions), distinct.
  // forward() then returns those rows (N, C), and the last block runs its
  // attention output projection, MLP and norms on them alone — what comes
  // after its attention is row-wise, and no later block reads the other
  // rows. Undefined: every row, (B, T, C).
  Tensor rows;
};

// Where backward accumulates: a defined tensor means "this gradient is
// wanted". Gradients accumulate (+=) so micro-batches add up.
struct ModelGrads {
  Tensor input_embeds;       // (B, T, C)
  KvPrefix* prefix = nullptr;  // d(keys[l]), d(values[l]) where defined
};

// Called around the weight units the forward and backward use, so that a
// sharded model (dist::ShardedWeights) can all-gather a unit just before it
// runs and start gathering the next one. Units are indices into
// weights().units(): 0 the embeddings (released once embedded, acquired
// again for the embedding norm's backward), block l is unit 1 + l.
class WeightGate {
 public:
  enum class Pass : uint8_t { kForward, kBackward };
  virtual ~WeightGate() = default;
  // The unit's views are valid from here to release(); `next` (-1: none)
  // is the unit this pass runs after it, to prefetch.
  virtual void acquire(int64_t unit, int64_t next, Pass pass) = 0;
  virtual void release(int64_t unit, Pass pass) = 0;
};

class Transformer {
 public:
  Transformer(const ModelSpec& spec, std::unique_ptr<ModelWeights> weights);
  // config.json + safetensors of a Hugging Face model directory, placed as
  // `options` say (ModelWeights::load: this rank's parts of a sharded
  // model, for dist::ShardedWeights to take; a GPU and a dtype).
  static std::unique_ptr<Transformer> load(const std::string& dir, const LoadOptions& options = {});

  const ModelSpec& spec() const { return spec_; }
  const ModelWeights& weights() const { return *weights_; }
  ModelWeights& weights() { return *weights_; }
  // Where the model runs and its activation dtype: those of its weights
  // (f32 on the CPU; bf16 or f32 on a GPU after weights().to()).
  Device device() const { return weights_->device(); }
  DType dtype() const { return weights_->dtype(); }
  // nullptr: every unit stays resident (the default).
  void set_weight_gate(WeightGate* gate) { gate_ = gate; }
  // Activation checkpointing (transformers' gradient_checkpointing): forward
  // keeps only each block's input, backward runs the block's forward again
  // just before its backward. Activation memory drops from every block's
  // activations to their inputs plus one block's, for a second forward of
  // every block (a pre-LN rerun stops at the MLP's first GEMM). The
  // gradients are the same bits: the rerun computes what the forward did.
  void set_recompute(bool on) { recompute_ = on; }
  bool recompute() const { return recompute_; }

  // out (B, T, C) = word embeddings of ids (B, T) i32, both on the model's
  // device, times embed_scale() as the checkpoint's embedding layer scales
  // them (Gemma: √C).
  void embed_tokens(const Tensor& out, const Tensor& ids) const;
  // ModelSpec::embed_scale in the model's dtype, as transformers rounds it
  // (a bf16 model multiplies by the bf16 value). Prompt rows spliced in
  // among the words (ops::prompt_embedding_forward) are not scaled.
  float embed_scale() const;
  // Position ids (B, T) i32 as transformers derives them: real tokens start
  // at P (the prefix length) + the spec's offset; RoBERTa, given ids, also
  // gives padding the position padding_idx and counts only real tokens.
  // Host tensors (positions are computed where the batch is collated).
  void default_position_ids(const Tensor& out, const Tensor& ids, int64_t prefix_length) const;

  // Returns the last hidden state (B, T, C), or its rows (N, C) when
  // inputs.rows names some (after GPT-2's final norm). Everything backward
  // needs stays in `arena` until its next reset().
  Tensor forward(const ModelInputs& inputs, Arena& arena);
  // From dhidden, shaped as forward's result, accumulates the wanted
  // gradients of `grads`.
  // Uses the activations of the last forward.
  void backward(const Tensor& dhidden, const ModelGrads& grads, Arena& arena);

  // Layer l's fused q/k/v (B, T, H·D + 2·KVH·D) from the last forward, with
  // queries and keys already normalised (Qwen3) and rotated (RoPE): what a
  // KV cache keeps.
  const Tensor& layer_qkv(int64_t l) const { return saved_[size_t(l)].qkv; }

 private:
  struct LayerActivations {
    // Shapes: (B, T, ·) for every row; past the attention of a block that
    // runs on selected rows (`rows`), (N, ·) for those rows.
    Tensor input;                    // (B, T, C) residual stream entering the block
    Tensor norm1, mean1, rstd1;      // pre-LN: norm1 = LN(input); post-LN: LN(input + attn)
    Tensor qkv, probs, attn;         // (B, T, QKV), (B, H, T, P+T), (B, T, H·D)
    Tensor q_in, k_in;               // Qwen3: queries, keys before their norm, (B·T·H, D), (B·T·KVH, D)
    Tensor q_rstd, k_rstd;           // and its statistics, (B·T·H), (B·T·KVH)
    Tensor residual;                 // pre-LN: input + attn proj; post-LN: input + attn proj (pre-norm)
    Tensor norm2, mean2, rstd2;
    Tensor fc, act;                  // (·, I) before and after the activation
    Tensor residual2;                // post-LN: norm1 + mlp (before norm2)
    // post_norms (Gemma 3): the attention projection's and the MLP's outputs
    // before their own norms, (·, C), and those norms' rstd.
    Tensor proj, rstd3, mlp, rstd4;
    Tensor prefix_k, prefix_v;       // this layer's prefix, if any
    Tensor rows;                     // the last block: ModelInputs::rows (N) on the device, if given

    // What a block keeps between forward and backward under recompute.
    LayerActivations inputs_only() const {
      LayerActivations kept;
      kept.input = input;
      kept.prefix_k = prefix_k;
      kept.prefix_v = prefix_v;
      kept.rows = rows;
      return kept;
    }
  };

  // Block l's forward from a.input into out, saving what backward reads in
  // a. An undefined out: only the saved activations are wanted (the rerun
  // of recompute; pre-LN stops at the MLP's first GEMM).
  void layer_forward(int64_t l, LayerActivations& a, const Tensor& out, const Tensor& mask, Arena& arena);
  // From dout (B, T, C), the gradient at the block's output, accumulates the
  // prefix gradients and returns the gradient at the block's input, or an
  // undefined tensor when !need_input (the lowest prompt layer). dout is
  // consumed: pre-LN, the residual stream's gradient is one buffer updated
  // in place down the layers — dout becomes d(residual) (norm2's share added
  // after the MLP has read it), then d(input) (norm1's share added after the
  // attention projection has read it), and is returned. Post-LN, norm2's
  // backward reads dout, then its buffer takes d(residual) and is returned.
  // Either way the result lives in dout's buffer — except in a block that
  // ran on selected rows: its dout is (N, C), and d(input) (B, T, C) goes to
  // `dinput`, which it overwrites — so everything else the block allocates
  // is scratch that backward() frees after it. backward() hands it buffers
  // of its own, never the caller's dhidden.
  Tensor layer_backward(int64_t l, LayerActivations& a, const Tensor& dout, bool need_input,
                        const Tensor& dprefix_k, const Tensor& dprefix_v, const Tensor& dinput, Arena& arena);

  // Layer l's RoPE frequencies: Gemma 3's sliding-window layers have their own.
  const Tensor& rope_freq(int64_t l) const { return spec_.is_local(l) ? rope_local_inv_freq_ : rope_inv_freq_; }
  // LongRoPE's scale of cos and sin for layer l (1 for every other RoPE).
  float rope_scale(int64_t l) const { return (spec_.is_local(l) ? spec_.rope_local : spec_.rope).attention_factor; }

  ModelSpec spec_;
  std::unique_ptr<ModelWeights> weights_;
  ops::AttentionConfig attention_;
  WeightGate* gate_ = nullptr;
  bool recompute_ = false;

  // Saved by forward for backward (views into the caller's arena).
  std::vector<LayerActivations> saved_;
  Tensor embed_sum_, embed_mean_, embed_rstd_;  // BERT's embedding LayerNorm input and stats
  Tensor final_input_, final_mean_, final_rstd_;
  Tensor mask_;                       // (B, T) i32 of the last forward on the device, or undefined
  Tensor rows_;                       // ModelInputs::rows of the last forward on the device, or undefined
  Tensor positions_, rope_inv_freq_;  // RoPE: (B, T) i32 of the last forward, (D/2), on the device
  Tensor rope_local_inv_freq_;        // Gemma 3's sliding-window layers' (D/2), or undefined
  std::vector<int32_t> host_positions_;  // RoPE: the positions read on the host (range check, max)
  std::vector<float> host_inv_freq_;     // RoPE: frequencies computed on the host, uploaded per forward
  std::vector<uint8_t> row_seen_;        // rows' check for repeats (reused: no allocation once grown)
  int64_t batch_ = 0, seq_ = 0;
};

}  // namespace ptune::model
