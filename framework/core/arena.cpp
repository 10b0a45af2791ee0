#include "framework/core/arena.h"

#include <algorithm>

namespace ptune {

namespace {
constexpr size_t kAlign = 256;
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

Arena::Arena(Device device, size_t initial_bytes) : device_(device) {
  blocks_.reserve(16);
  if (initial_bytes > 0) add_block(initial_bytes);
}

Arena::~Arena() {
  for (Block& b : blocks_) device_free(device_, b.data);
}

void Arena::add_block(size_t bytes) {
  bytes = round_up(bytes);
  blocks_.push_back({static_cast<char*>(device_allocate(device_, bytes)), bytes, 0});
  ++system_allocations_;
}

Tensor Arena::alloc(const Shape& shape, DType dtype) {
  const size_t bytes = round_up(size_t(shape.numel()) * dtype_size(dtype));
  if (blocks_.empty() || blocks_.back().offset + bytes > blocks_.back().size) {
    // Grow geometrically so a cold start needs few blocks.
    const size_t last = blocks_.empty() ? 0 : blocks_.back().size;
    add_block(std::max({bytes, 2 * last, size_t(1) << 20}));
  }
  Block& b = blocks_.back();
  char* p = b.data + b.offset;
  b.offset += bytes;
  used_ += bytes;
  peak_ = std::max(peak_, used_);
  return Tensor::borrow(p, shape, dtype, device_);
}

Tensor Arena::zeros(const Shape& shape, DType dtype) {
  Tensor t = alloc(shape, dtype);
  t.zero_();
  return t;
}

Tensor Arena::copy_of(const Tensor& t) {
  if (!t.defined() || t.device() == device_) return t;
  Tensor c = alloc(t.shape(), t.dtype());
  c.copy_from(t);
  return c;
}

Arena::Mark Arena::mark() const {
  return {blocks_.size(), blocks_.empty() ? 0 : blocks_.back().offset, used_};
}

void Arena::rewind(const Mark& m) {
  PTUNE_CHECK(m.blocks <= blocks_.size() && m.used <= used_ &&
                  (m.blocks == 0 || m.offset <= blocks_[m.blocks - 1].offset),
              "arena: rewind to a mark that is not behind the current allocation (taken before a reset?)");
  // Blocks added since the mark are emptied and kept (reset() folds them).
  for (size_t i = m.blocks; i < blocks_.size(); ++i) blocks_[i].offset = 0;
  if (m.blocks > 0) blocks_[m.blocks - 1].offset = m.offset;
  used_ = m.used;
}

void Arena::reset() {
  if (blocks_.size() > 1) {
    // Fold into one block as large as everything handed out at the peak.
    for (Block& b : blocks_) device_free(device_, b.data);
    blocks_.clear();
    add_block(peak_);
  }
  for (Block& b : blocks_) b.offset = 0;
  used_ = 0;
}

}  // namespace ptune
