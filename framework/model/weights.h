// The frozen weights of a model, grouped in units.
//
// A unit (the embeddings, one block, the final norm and heads) is one flat
// buffer (f32 as loaded; bf16 on a GPU after to()); every weight is a view
// into it. The unit is the granularity of sharding: a rank can hold 1/N of
// a flat buffer and all-gather it before the unit runs, then rebind the
// views (DESIGN.md §4). A rank that will shard loads only its parts
// (load() with a ShardLayout), so no rank ever holds the whole model.
//
// Linear weights are stored as torch.nn.Linear does, (out, in); GPT-2's
// Conv1D weights (in, out) are transposed at load, BERT's separate query,
// key and value are stacked into one qkv weight (3C, C). LLaMA-family
// q/k/v stack the same way (H·D + 2·KVH·D rows) and the SwiGLU gate and up
// projections stack into fc (2I, C).
#pragma once

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "framework/core/rng.h"
#include "framework/core/tensor.h"
#include "framework/io/checkpoint.h"
#include "framework/model/spec.h"

namespace ptune::model {

struct EmbeddingWeights {
  Tensor word;          // (V, C)
  Tensor position;      // (max_positions, C)
  Tensor token_type;    // (types, C), BERT/RoBERTa
  Tensor norm_w, norm_b;  // (C), BERT/RoBERTa
};

// norm1 sits around attention, norm2 around the MLP (before them in pre-LN
// models, after the residual add in post-LN ones).
struct BlockWeights {
  Tensor norm1_w, norm1_b;  // (C)
  Tensor qkv_w, qkv_b;      // (H·D + 2·KVH·D, C), (H·D + 2·KVH·D)
  Tensor q_norm_w, k_norm_w;  // (D): Qwen3's per-head query / key RMSNorm
  // (C): Gemma 3's norms of the attention and MLP outputs (ModelSpec::post_norms)
  Tensor post_attn_norm_w, post_mlp_norm_w;
  Tensor proj_w, proj_b;    // (C, H·D), (C)
  Tensor norm2_w, norm2_b;  // (C)
  Tensor fc_w, fc_b;        // (I, C), (I)
  Tensor fc2_w, fc2_b;      // (C, I), (C)
};

struct HeadWeights {
  Tensor final_norm_w, final_norm_b;  // (C), GPT-2's ln_f
  Tensor lm_w;                        // (V, C) untied LM head; tied models read embeddings.word
  // BERT/RoBERTa masked-LM head: dense → activation → LayerNorm → decoder.
  Tensor mlm_dense_w, mlm_dense_b, mlm_norm_w, mlm_norm_b, mlm_bias;  // decoder bias (V)
  Tensor pooler_w, pooler_b;  // (C, C), (C): tanh(dense(h[:, 0]))
  Tensor score_w;             // (labels, C): *ForSequenceClassification's "score" (LLaMA family, GPT-2)
};

// How a ptune weight is read from (and written to) a checkpoint: the rows
// of the ptune tensor are the concatenation of `sources`.
// kPlusOne: Gemma's norm weights, stored as w and applied as 1 + w (held as
// 1 + w, so its norms are ordinary RMSNorms).
enum class Transform : uint8_t { kCopy, kTranspose, kPlusOne };
struct Source {
  std::string name;
  Transform transform = Transform::kCopy;
  int64_t rows = 0;  // rows of the ptune tensor it fills (0: all of them)
};
struct Param {
  std::string name;  // ptune's name, for messages
  Shape shape;
  std::vector<Source> sources;
  Tensor* slot;  // the view to bind
  int64_t offset = 0;  // into the unit's flat buffer
};

// Rank `rank` of `ranks` equal parts of a unit's flat buffer: the buffer is
// padded to a multiple of `ranks` and each rank holds per_rank(numel)
// elements, [begin, end) of the buffer followed by zero padding (the last
// ranks' parts only). dist::ShardedWeights gathers them back.
struct ShardLayout {
  int64_t rank = 0, ranks = 1;
  int64_t per_rank(int64_t numel) const { return (numel + ranks - 1) / ranks; }
  int64_t begin(int64_t numel) const { return std::min(rank * per_rank(numel), numel); }
  int64_t end(int64_t numel) const { return std::min((rank + 1) * per_rank(numel), numel); }
  bool operator==(const ShardLayout&) const = default;
};

// Where ModelWeights::load puts the weights: this rank's parts (`layout`) on
// `device` in `dtype`. Units are read and placed one at a time, so beyond
// what stays on the host, it holds one unit in f32 at most.
struct LoadOptions {
  ShardLayout layout;
  Device device = Device::cpu();
  DType dtype = DType::kF32;
};

struct WeightUnit {
  std::string name;
  std::vector<Param> params;
  int64_t numel = 0;  // of the flat buffer: the parameters plus alignment gaps
  Tensor flat;        // (numel) while resident
  Tensor shard;       // (per_rank(numel)) this rank's part, from a sharded load until ShardedWeights takes it

  int64_t parameter_count() const;  // the weights' elements, gaps excluded

  void bind(const Tensor& flat_buffer);  // points every slot into it
};

// Which optional parts a model has beyond its base.
enum class Component : uint8_t { kMlmHead, kPooler, kLmHead, kScore };

class ModelWeights {
 public:
  // The layout for `spec`; `components` says which optional heads exist;
  // `prefix` is the base model's key prefix in the checkpoint.
  // `score_labels` is the row count of the score head (with kScore).
  ModelWeights(const ModelSpec& spec, std::set<Component> components, std::string prefix, int64_t score_labels = 0);
  // The prefix transformers' *ForMaskedLM / *LMHeadModel classes use.
  static std::string default_prefix(Arch arch);
  ModelWeights(const ModelWeights&) = delete;
  ModelWeights& operator=(const ModelWeights&) = delete;

  // The layout of a checkpoint's weights, none of them read: the optional
  // heads it has, every tensor's presence and shape checked (the units
  // hold no buffers).
  static std::unique_ptr<ModelWeights> describe(const ModelSpec& spec, const io::CheckpointReader& checkpoint);
  // Reads a checkpoint, described first (so on every rank, a bad checkpoint
  // fails the same way before anything is read). With a
  // layout of several ranks each unit but the embeddings is read only in
  // this rank's part (WeightUnit::shard): a rank reads and holds 1/N of the
  // blocks. The embeddings stay whole (flat), as a sharded step gathers
  // them anyway: the prompt's init reads their rows before ShardedWeights
  // takes its part of them.
  static std::unique_ptr<ModelWeights> load(const ModelSpec& spec, const io::CheckpointReader& checkpoint,
                                            const LoadOptions& options = {});
  // Random weights as transformers' _init_weights: N(0, initializer_range),
  // norms 1 and 0.
  static std::unique_ptr<ModelWeights> random(const ModelSpec& spec, std::set<Component> components, Rng& rng);
  // Hugging Face names and layouts, for save_pretrained-compatible output.
  std::vector<std::pair<std::string, Tensor>> to_checkpoint() const;

  // Moves every resident unit (and every loaded part) to `device`,
  // converted to `dtype` (bf16 frozen weights on a GPU); the views rebind,
  // so anything that copied a view before the move must be built after it.
  void to(Device device, DType dtype);
  // Where the units live and their dtype (also while sharded away).
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }

  // The parts WeightUnit::shard holds ({0, 1}: a whole load).
  const ShardLayout& shard_layout() const { return layout_; }

  bool has(Component c) const { return components_.count(c) != 0; }
  int64_t parameter_count() const;
  const std::vector<WeightUnit>& units() const { return units_; }

  EmbeddingWeights embeddings;
  std::vector<BlockWeights> blocks;
  HeadWeights heads;

 private:
  void allocate();

  ModelSpec spec_;
  std::set<Component> components_;
  std::string prefix_;  // "transformer.", "bert.", "roberta.", "model." or ""
  std::vector<WeightUnit> units_;
  Device device_;
  DType dtype_ = DType::kF32;
  ShardLayout layout_;
};

}  // namespace ptune::model
