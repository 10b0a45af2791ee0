// A bidirectional multi-layer LSTM over one sequence, as torch.nn.LSTM(
// bidirectional=True, batch_first=True) computes it for batch 1 (the
// P-Tuning prompt encoder's `lstm_head`).
//
// Per layer k and direction (suffix "" or "_reverse"), torch's parameters:
//   weight_ih_l{k} (4H, In_k), weight_hh_l{k} (4H, H), bias_ih_l{k} (4H), bias_hh_l{k} (4H)
// with gate rows in torch's order i, f, g, o; In_0 = the input size, In_k = 2H.
//   i, f, o = σ(·), g = tanh(·) of  W_ih x_t + b_ih + W_hh h_{t−1} + b_hh
//   c_t = f c_{t−1} + i g,  h_t = o tanh(c_t),  h_{−1} = c_{−1} = 0
// The reverse direction runs t = T−1 … 0. A layer's output is
// [h_fwd | h_rev] (T, 2H); between layers (not after the last) dropout
// applies to it while training, as torch does.
//
// Forward writes (=); backward accumulates (+=) into the parameter gradients
// and into dx. Every step is a device op: x, y, the parameters and the
// arena live on one device, the CPU or a GPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/core/arena.h"
#include "framework/core/parameters.h"
#include "framework/core/rng.h"
#include "framework/core/tensor.h"

namespace ptune::peft {

class Lstm {
 public:
  // Declares the parameters, named `prefix` + torch's names (e.g.
  // "prompt_encoder.lstm_head." + "weight_ih_l0_reverse"), before finalize.
  Lstm(ParameterSet& params, const std::string& prefix, int64_t input, int64_t hidden, int64_t layers);

  int64_t hidden() const { return hidden_; }
  int64_t layers() const { return layers_; }

  // torch's reset_parameters: every weight and bias U(±1/√H).
  void init(Rng& rng) const;

  // y (T, 2H) = LSTM(x (T, In)). dropout_p > 0 applies dropout between
  // layers with the mask of philox (seed, offset + k·T·2H + i) for layer k's
  // output; backward recomputes the same masks. Uses (layers − 1)·T·2H
  // random values. Keeps what backward needs in `arena`.
  void forward(const Tensor& y, const Tensor& x, Arena& arena, float dropout_p, uint64_t seed, uint64_t offset);
  // dx (T, In) += ∂/∂x; parameter gradients += ∂/∂θ, from dy (T, 2H).
  // dx may be undefined (the input needs no gradient).
  void backward(const Tensor& dx, const Tensor& dy, Arena& arena);

 private:
  struct Cell {  // one layer, one direction
    size_t w_ih, w_hh, b_ih, b_hh;  // indices in the ParameterSet
    Tensor acts;                     // (T, 4H) i, f, g, o after their nonlinearities
    Tensor c;                        // (T, H)
  };
  void cell_forward(Cell& cell, int dir, const Tensor& x, const Tensor& y, Arena& arena);
  void cell_backward(const Cell& cell, int dir, const Tensor& x, const Tensor& y, const Tensor& dy,
                     const Tensor& dx, Arena& arena);

  ParameterSet& params_;
  int64_t input_, hidden_, layers_;
  std::vector<Cell> cells_;     // layer k, direction d at 2k + d
  std::vector<Tensor> inputs_;  // layer inputs (after dropout), (T, In_k)
  std::vector<Tensor> outputs_; // layer outputs, (T, 2H)
  float dropout_p_ = 0.0f;
  uint64_t dropout_seed_ = 0, dropout_offset_ = 0;
};

}  // namespace ptune::peft
