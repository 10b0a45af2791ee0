// The pointwise part of one LSTM step, in torch.nn.LSTM's gate order
// i, f, g, o. The GEMMs around it (x·W_ihᵀ + b_ih for every timestep at
// once, h_{t−1}·W_hhᵀ per step, their gradients) are ops/linear.h calls;
// these ops are what remains between them (peft/lstm.cpp).
//
// Every tensor is f32 (the prompt encoder's master copies) with N rows, one
// per independent sequence (the bi-LSTM has N = 1: one row of its (T, ·)
// matrices, a slice). Undefined optional inputs stand for zeros, as at the
// first step of a sequence. Forward writes (=); backward writes dgates and
// carries dc in place (the recurrence consumes it step by step).
#pragma once

#include <cstdint>

#include "framework/core/tensor.h"

namespace ptune::ops {

// pre = gx + rec + b_hh;  i, f, o = σ(pre), g = tanh(pre) per gate block;
// c = f·c_prev + i·g;  h = o·tanh(c).
//   gx (N, 4H)      input projection x_t·W_ihᵀ + b_ih
//   rec (N, 4H)     recurrent projection h_{t−1}·W_hhᵀ, or undefined (h_{t−1} = 0)
//   b_hh (4H)
//   c_prev (N, H)   or undefined (c_{t−1} = 0)
//   acts (N, 4H)    out: i, f, g, o after their nonlinearities (saved for backward)
//   c (N, H), h (N, H)  out
void lstm_cell_forward(const Tensor& acts, const Tensor& c, const Tensor& h, const Tensor& gx, const Tensor& rec,
                       const Tensor& b_hh, const Tensor& c_prev);

// The step's backward, from its saved acts and c:
//   dh = dh_out + dh_rec,  dc ← dc + dh·o·(1 − tanh²c)
//   dgates = [dc·g·i(1−i), dc·c_prev·f(1−f), dc·i(1−g²), dh·tanh(c)·o(1−o)]
//   dc ← dc·f   (∂L/∂c_{t−1}, carried to the previous step)
//   dgates (N, 4H)  out: ∂L/∂pre (written, not accumulated)
//   dc (N, H)       in: ∂L/∂c_t from later steps (zeros at the last); out: ∂L/∂c_{t−1}
//   dh_out (N, H)   ∂L/∂h_t from the layer's output
//   dh_rec (N, H)   ∂L/∂h_t through the next step's W_hh, or undefined (zeros)
//   acts (N, 4H), c (N, H)  this step's forward values
//   c_prev (N, H)   or undefined (the first step: c_{t−1} = 0)
void lstm_cell_backward(const Tensor& dgates, const Tensor& dc, const Tensor& dh_out, const Tensor& dh_rec,
                        const Tensor& acts, const Tensor& c, const Tensor& c_prev);

// N and H of a cell op's operands after checking every shape, that they are
// f32 and on one device, naming the mismatch; both backends call these.
struct LstmCellShape {
  int64_t rows, hidden;
};
LstmCellShape lstm_cell_forward_shape(const Tensor& acts, const Tensor& c, const Tensor& h, const Tensor& gx,
                                      const Tensor& rec, const Tensor& b_hh, const Tensor& c_prev);
LstmCellShape lstm_cell_backward_shape(const Tensor& dgates, const Tensor& dc, const Tensor& dh_out,
                                       const Tensor& dh_rec, const Tensor& acts, const Tensor& c,
                                       const Tensor& c_prev);

}  // namespace ptune::ops
