// Sharded frozen weights (ZeRO-3 style, DESIGN.md §4).
//
// Each rank of `comm` keeps 1/N of every weight unit's flat buffer (padded
// to a multiple of N, model::ShardLayout), in the flat buffer's dtype and on
// its device (bf16 on a GPU after ModelWeights::to: build the sharding after
// that move). ModelWeights::load can read just these parts. The
// gathers move raw bytes, so any dtype shards; on a GPU they run on the
// NCCL communication stream and the compute stream waits on their events,
// never the host. Blocks are all-gathered just before they run, and
// the next block's gather is started (non-blocking) before the current one
// computes, in forward and again in backward; a gathered block is dropped
// after use, or, with keep_for_backward, kept from its forward to its
// backward. The embeddings (unit 0) are gathered by begin_micro_batch()
// (the prompt model embeds tokens before the transformer runs) and dropped
// once the transformer has embedded, then gathered again if backward needs
// them (BERT's embedding norm, for input prompts); the heads (unit L + 1:
// final norm, pooler, LM/MLM heads) serve the task head after forward and
// stay from begin_micro_batch() to end_micro_batch().
//
// All-gathered bytes per micro-batch, backward reaching block `lowest`:
//   Ψ + (keep ? 0 : Σ_{l ≥ lowest} Ψ_block(l) + [embedding norm backward] Ψ_emb)
// (Ψ = padded bytes of all units): at most 2Ψ − Ψ_heads, Ψ with keep.
//
// Memory: frozen_bytes() counts the shards plus every gathered buffer alive;
// peak_frozen_bytes() its maximum, against full_bytes() unsharded: Ψ/N +
// Ψ_heads + max(Ψ_emb, 2 blocks) without keep. Every byte count is real
// bytes: numel · dtype size. (A task head that decodes with the tied word
// embeddings keeps the embeddings gathered for the micro-batch —
// keep_embeddings() — so such tasks save Ψ_emb less.)
#pragma once

#include <memory>
#include <vector>

#include "framework/dist/communicator.h"
#include "framework/model/transformer.h"

namespace ptune::dist {

class ShardedWeights final : public model::WeightGate {
 public:
  // Takes this rank's shards of `model`'s units (a slice of a whole unit,
  // or the part a sharded load left in WeightUnit::shard, which must be
  // this communicator's), drops the full buffers and installs itself as
  // the model's gate (until destroyed).
  ShardedWeights(model::Transformer& model, Communicator& comm, bool keep_for_backward);
  ~ShardedWeights() override;
  ShardedWeights(const ShardedWeights&) = delete;
  ShardedWeights& operator=(const ShardedWeights&) = delete;

  // Around one forward (+ backward) of the model; `backward` says whether
  // one follows (keep_for_backward only keeps blocks then).
  void begin_micro_batch(bool backward);
  void end_micro_batch();

  // Keeps the embeddings (unit 0) gathered from begin_micro_batch() to
  // end_micro_batch(): for a task head that reads the tied word embeddings
  // (the LM decoder) after the transformer ran.
  void keep_embeddings() { keep_embeddings_ = true; }

  void acquire(int64_t unit, int64_t next, Pass pass) override;
  void release(int64_t unit, Pass pass) override;

  int64_t full_bytes() const { return full_bytes_; }
  int64_t frozen_bytes() const { return live_bytes_; }
  int64_t peak_frozen_bytes() const { return peak_bytes_; }
  // Padded bytes of unit u (what gathering it moves).
  int64_t unit_bytes(size_t u) const { return units_[u].bytes(); }
  size_t num_units() const { return units_.size(); }
  bool keep_for_backward() const { return keep_; }
  // The ranks it shards over (the world's or the node's communicator).
  Communicator& communicator() { return comm_; }

 private:
  struct Unit {
    int64_t numel = 0, padded = 0;
    DType dtype = DType::kF32;
    Device device;
    Tensor shard;  // (padded / N) this rank's slice
    Tensor full;   // (padded) while gathered
    int64_t bytes() const { return padded * int64_t(dtype_size(dtype)); }
    std::unique_ptr<Request> pending;
    bool bound = false;
  };
  void start_gather(size_t u);
  void ensure(size_t u);  // gathered and bound
  void drop(size_t u);

  model::Transformer& model_;
  Communicator& comm_;
  bool keep_;
  bool keep_embeddings_ = false;
  bool backward_ = false;
  std::vector<Unit> units_;
  int64_t full_bytes_ = 0, live_bytes_ = 0, peak_bytes_ = 0;
};

}  // namespace ptune::dist
