#include "framework/core/tensor.h"

#include <algorithm>
#include <vector>

namespace ptune {

Shape::Shape(std::initializer_list<int64_t> dims) {
  for (int64_t d : dims) push_back(d);
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim_; ++i) n *= dims_[size_t(i)];
  return n;
}

void Shape::push_back(int64_t d) {
  PTUNE_CHECK(ndim_ < kMaxDims, "shapes have at most {} dimensions", kMaxDims);
  PTUNE_CHECK(d >= 0, "negative dimension {}", d);
  dims_[size_t(ndim_++)] = d;
}

bool Shape::operator==(const Shape& o) const { return std::equal(begin(), end(), o.begin(), o.end()); }

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < ndim_; ++i) s += (i ? ", " : "") + std::to_string(dims_[size_t(i)]);
  return s + ")";
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  const size_t bytes = size_t(shape.numel()) * dtype_size(dtype);
  void* p = device_allocate(device, bytes);
  Tensor t;
  t.owner_ = std::shared_ptr<void>(p, [device](void* q) { device_free(device, q); });
  t.data_ = p;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::borrow(void* data, const Shape& shape, DType dtype, Device device,
                      std::shared_ptr<void> keepalive) {
  Tensor t;
  t.data_ = data;
  t.owner_ = std::move(keepalive);
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

Tensor Tensor::view(const Shape& shape) const {
  PTUNE_CHECK(shape.numel() == numel(), "cannot view {} as {}", shape_.str(), shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  PTUNE_CHECK(dim() >= 1 && 0 <= begin && begin <= end && end <= size(0),
              "slice [{}, {}) out of range for shape {}", begin, end, shape_.str());
  Tensor t = *this;
  const int64_t row = size(0) == 0 ? 0 : numel() / size(0);
  t.data_ = static_cast<char*>(data_) + size_t(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::select(int64_t i) const {
  Tensor s = slice(i, i + 1);
  Shape rest(shape_.begin() + 1, shape_.end());
  s.shape_ = rest;
  return s;
}

void Tensor::zero_() { device_memset_zero(device_, data_, nbytes()); }

void Tensor::copy_from(const Tensor& src) {
  PTUNE_CHECK(src.numel() == numel() && src.dtype() == dtype_, "copy {} {} into {} {}",
              dtype_name(src.dtype()), src.shape().str(), dtype_name(dtype_), shape_.str());
  device_copy(device_, data_, src.device_, src.data_, nbytes());
}

Tensor Tensor::to(Device device) const {
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

namespace {

// Element storage of each dtype and its exact round trip through double
// (i64 exact up to 2^53); one struct per dtype, so a conversion loop is
// compiled per (from, to) pair with no switch inside it.
struct F32 {
  using T = float;
  static double load(T v) { return v; }
  static T store(double v) { return float(v); }
};
struct BF16 {
  using T = uint16_t;
  static double load(T v) { return bf16_to_f32(v); }
  static T store(double v) { return f32_to_bf16(float(v)); }
};
struct F16 {
  using T = uint16_t;
  static double load(T v) { return f16_to_f32(v); }
  static T store(double v) { return f32_to_f16(float(v)); }
};
struct I32 {
  using T = int32_t;
  static double load(T v) { return v; }
  static T store(double v) { return int32_t(v); }
};
struct I64 {
  using T = int64_t;
  static double load(T v) { return double(v); }
  static T store(double v) { return int64_t(v); }
};

// Calls f(S{}) with the storage struct of `dtype`.
template <class F>
void with_storage(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF32: return f(F32{});
    case DType::kBF16: return f(BF16{});
    case DType::kF16: return f(F16{});
    case DType::kI32: return f(I32{});
    case DType::kI64: return f(I64{});
  }
}

}  // namespace

Tensor Tensor::to(DType dtype) const {
  PTUNE_CHECK(device_.is_cpu(), "dtype conversion runs on the CPU; move the tensor first");
  if (dtype == dtype_) return clone();
  Tensor out = empty(shape_, dtype, device_);
  const int64_t n = numel();
  // Loading a bf16 checkpoint as f32, or a model's weights as bf16 for a
  // GPU, converts billions of values: threads, and no dispatch per value.
  with_storage(dtype_, [&](auto from) {
    with_storage(dtype, [&](auto to) {
      using From = decltype(from);
      using To = decltype(to);
      const auto* src = static_cast<const typename From::T*>(data_);
      auto* dst = static_cast<typename To::T*>(out.data_);
#pragma omp parallel for schedule(static) if (n > (int64_t(1) << 16))
      for (int64_t i = 0; i < n; ++i) dst[i] = To::store(From::load(src[i]));
    });
  });
  return out;
}

void check_tensor(const Tensor& t, const char* name, const Shape& shape, DType dtype) {
  PTUNE_CHECK(t.defined(), "{} is missing", name);
  PTUNE_CHECK(t.shape() == shape && t.dtype() == dtype, "{} must be {} {}, got {} {}", name,
              dtype_name(dtype), shape.str(), dtype_name(t.dtype()), t.shape().str());
}

}  // namespace ptune
