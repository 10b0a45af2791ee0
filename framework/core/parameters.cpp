#include "framework/core/parameters.h"

#include <utility>

namespace ptune {

size_t ParameterSet::add(std::string name, const Shape& shape, Decay decay) {
  PTUNE_CHECK(!finalized(), "parameter '{}' declared after the parameter set was finalized", name);
  for (const Entry& e : entries_) PTUNE_CHECK(e.name != name, "parameter '{}' declared twice", name);
  entries_.push_back({std::move(name), shape, numel_, decay});
  numel_ += shape.numel();
  return entries_.size() - 1;
}

void ParameterSet::finalize(Device device) {
  PTUNE_CHECK(!finalized(), "parameter set finalized twice");
  values_ = Tensor::zeros({numel_}, DType::kF32, device);
  grads_ = Tensor::zeros({numel_}, DType::kF32, device);
}

void ParameterSet::to(Device device) {
  PTUNE_CHECK(finalized(), "parameter set moved to {} before it was finalized", device.str());
  if (device == values_.device()) return;
  // Both copies first, so an allocation failure leaves the set intact.
  Tensor values = values_.to(device), grads = grads_.to(device);
  values_ = std::move(values);
  grads_ = std::move(grads);
}

Tensor ParameterSet::value(size_t i) const {
  PTUNE_CHECK(finalized() && i < entries_.size(), "parameter {} read before finalize or out of range", i);
  const Entry& e = entries_[i];
  return values_.slice(e.offset, e.offset + e.shape.numel()).view(e.shape);
}

Tensor ParameterSet::grad(size_t i) const {
  PTUNE_CHECK(finalized() && i < entries_.size(), "gradient {} read before finalize or out of range", i);
  const Entry& e = entries_[i];
  return grads_.slice(e.offset, e.offset + e.shape.numel()).view(e.shape);
}

size_t ParameterSet::index(const std::string& name) const {
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].name == name) return i;
  PTUNE_FAIL("no trainable parameter named '{}'", name);
}

}  // namespace ptune
