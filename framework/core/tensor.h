// Tensor: a contiguous row-major view over device storage.
//
// Storage is reference counted (std::shared_ptr) or borrowed: views made by
// an Arena or over an mmap'd file do not own their bytes, so the owner must
// outlive them. Copying a Tensor copies the view, never the data. Shapes
// have a fixed capacity, so making views allocates nothing.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "framework/core/device.h"
#include "framework/core/dtype.h"
#include "framework/core/error.h"

namespace ptune {

class Shape {
 public:
  static constexpr int kMaxDims = 6;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  template <class It>
  Shape(It begin, It end) {
    for (; begin != end; ++begin) push_back(int64_t(*begin));
  }

  int dim() const { return ndim_; }
  int64_t operator[](int i) const { return dims_[size_t(i < 0 ? i + ndim_ : i)]; }
  int64_t& operator[](int i) { return dims_[size_t(i < 0 ? i + ndim_ : i)]; }
  int64_t numel() const;
  void push_back(int64_t d);
  const int64_t* begin() const { return dims_.data(); }
  const int64_t* end() const { return dims_.data() + ndim_; }
  bool operator==(const Shape& o) const;
  std::string str() const;  // "(2, 3, 4)"

 private:
  std::array<int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

class Tensor {
 public:
  Tensor() = default;

  // Owning, uninitialised / zero-filled storage.
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
  // A view over bytes someone else owns; `keepalive` (optional) is held.
  static Tensor borrow(void* data, const Shape& shape, DType dtype, Device device = Device::cpu(),
                       std::shared_ptr<void> keepalive = {});

  bool defined() const { return data_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int dim() const { return shape_.dim(); }
  int64_t size(int d) const { return shape_[d]; }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  void* raw() const { return data_; }
  template <class T>
  T* data() const {
    PTUNE_CHECK(dtype_ == dtype_of<T>(), "tensor holds {}, accessed as {}", dtype_name(dtype_),
                dtype_name(dtype_of<T>()));
    return static_cast<T*>(data_);
  }

  // Same bytes, another shape with the same number of elements.
  Tensor view(const Shape& shape) const;
  // Rows [begin, end) of dimension 0.
  Tensor slice(int64_t begin, int64_t end) const;
  // Row i of dimension 0, with that dimension dropped.
  Tensor select(int64_t i) const;

  void zero_();
  // Copies another tensor's bytes (same dtype and numel; any devices).
  void copy_from(const Tensor& src);
  // A new owning tensor on `device` / with `dtype` (converted on the CPU).
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor clone() const { return to(device_); }

 private:
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;
  Shape shape_;
  DType dtype_ = DType::kF32;
  Device device_;
};

// Checks a tensor's shape and dtype, naming it in the error.
void check_tensor(const Tensor& t, const char* name, const Shape& shape, DType dtype = DType::kF32);

}  // namespace ptune
