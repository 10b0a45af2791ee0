// Pointwise activations.
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"

namespace ptune::ops {

enum class Activation : uint8_t {
  kGeluTanh,  // GPT-2's "gelu_new": 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
  kGeluErf,   // BERT's "gelu": 0.5x(1 + erf(x/√2))
  kRelu,
  kTanh,
  kSilu,
};

// Maps a Hugging Face `hidden_act` / `activation_function` string.
Activation activation_from_name(const std::string& name);

// y = f(x), any shape.
void activation_forward(Activation f, const Tensor& y, const Tensor& x);
// dx += dy · f'(x).
void activation_backward(Activation f, const Tensor& dx, const Tensor& dy, const Tensor& x);

}  // namespace ptune::ops
