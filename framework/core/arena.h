// Arena: bump allocation for one step's activations and scratch.
//
// The first steps may grow it (one extra block each time it runs out);
// reset() then folds everything into a single block as large as the peak,
// so a steady-state step performs no allocation at all. Tensors handed out
// borrow the arena's bytes and are invalid after reset(), or after a
// rewind() to a mark taken before them (scratch that dies with a layer:
// the next layer reuses its bytes, so the peak is one layer's scratch, not
// the sum of all of them). In a single block the offset is the bytes in
// use, so a block as large as the peak holds any step that fits it.
#pragma once

#include <cstddef>
#include <vector>

#include "framework/core/tensor.h"

namespace ptune {

class Arena {
 public:
  explicit Arena(Device device = Device::cpu(), size_t initial_bytes = 0);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  Tensor alloc(const Shape& shape, DType dtype = DType::kF32);
  Tensor zeros(const Shape& shape, DType dtype = DType::kF32);
  // `t` on the arena's device: t itself when it already lives there, else
  // an arena copy (host batch inputs of a GPU step, read by its kernels).
  Tensor copy_of(const Tensor& t);
  // Frees everything handed out since the last reset.
  void reset();
  // A point in this step's allocations, and freeing everything handed out
  // after it (stack order: a rewind to an earlier mark frees later ones).
  struct Mark {
    size_t blocks = 0, offset = 0, used = 0;
  };
  Mark mark() const;
  void rewind(const Mark& m);

  Device device() const { return device_; }
  size_t used_bytes() const { return used_; }
  size_t peak_bytes() const { return peak_; }
  // How many times the arena asked the system for memory (tests use it to
  // prove the steady state allocates nothing).
  size_t system_allocations() const { return system_allocations_; }

 private:
  struct Block {
    char* data;
    size_t size;
    size_t offset;
  };
  void add_block(size_t bytes);

  Device device_;
  std::vector<Block> blocks_;
  size_t used_ = 0;
  size_t peak_ = 0;
  size_t system_allocations_ = 0;
};

}  // namespace ptune
