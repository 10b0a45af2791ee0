// Trainable parameters (prompts, prompt encoders, task heads).
//
// All values live in one flat f32 buffer and all gradients in another, so
// the optimizer, the gradient clipping and the data-parallel all-reduce
// each work on one contiguous span. Modules declare their parameters, the
// set is finalized once, then modules read views by index.
//
// The set is usually finalized and initialised on the CPU, then moved to a
// GPU with to(): value(i)/grad(i) are sliced from the flat buffers on each
// call, so views taken by index after the move live on the GPU; a view
// taken before the move still points at the old (CPU) buffers.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "framework/core/tensor.h"

namespace ptune {

// Whether AdamW's decoupled weight decay applies (transformers' Trainer
// exempts biases and LayerNorm weights).
enum class Decay : uint8_t { kApply, kExempt };

class ParameterSet {
 public:
  struct Entry {
    std::string name;  // e.g. "prompt.embedding", "head.dense.weight"
    Shape shape;
    int64_t offset;  // into the flat buffers
    Decay decay;
  };

  // Declares a parameter; returns its index. Only before finalize().
  size_t add(std::string name, const Shape& shape, Decay decay = Decay::kApply);
  // Allocates the zeroed value and gradient buffers.
  void finalize(Device device = Device::cpu());
  bool finalized() const { return values_.defined(); }
  // Moves the value and gradient buffers to `device` (a no-op when they
  // are there already). On failure the set is left where it was.
  void to(Device device);
  // Where the buffers live (the CPU before finalize()).
  Device device() const { return values_.defined() ? values_.device() : Device::cpu(); }

  // Overrides an entry's weight-decay rule (e.g. to match a plain
  // torch.optim.AdamW that decays everything); before the optimizer exists.
  void set_decay(size_t i, Decay decay) { entries_.at(i).decay = decay; }

  Tensor value(size_t i) const;
  Tensor grad(size_t i) const;
  size_t index(const std::string& name) const;  // error names the parameter
  const std::vector<Entry>& entries() const { return entries_; }

  const Tensor& values() const { return values_; }  // (numel)
  const Tensor& grads() const { return grads_; }    // (numel)
  int64_t numel() const { return numel_; }
  void zero_grad() { grads_.zero_(); }

 private:
  std::vector<Entry> entries_;
  int64_t numel_ = 0;
  Tensor values_, grads_;
};

}  // namespace ptune
