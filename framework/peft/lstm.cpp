// Bidirectional LSTM: the input projections of all timesteps are one GEMM
// per direction; the recurrence is one (1, H)·W_hhᵀ GEMV per step plus a
// fused pointwise cell (ops/recurrent.h). Every step is a device op, so the
// encoder runs wherever its parameters live (CPU or GPU). Forward writes
// (=), backward accumulates (+=).
#include "framework/peft/lstm.h"

#include <cmath>

#include "framework/core/rng.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"
#include "framework/ops/recurrent.h"

namespace ptune::peft {

namespace {

// Row t of a (T, ·) matrix as a (1, ·) view.
Tensor row(const Tensor& m, int64_t t) { return m.slice(t, t + 1); }

// Direction dir's half of row t of a (T, 2H) layer output (or its
// gradient), as a (1, H) view: columns [dir·H, dir·H + H) are contiguous.
Tensor half_row(const Tensor& y, int64_t t, int dir) {
  return row(y, t).view({2, y.size(1) / 2}).slice(dir, dir + 1);
}

// The step order of a direction: s-th step processes time t.
int64_t time_at(int dir, int64_t s, int64_t T) { return dir == 0 ? s : T - 1 - s; }

}  // namespace

Lstm::Lstm(ParameterSet& params, const std::string& prefix, int64_t input, int64_t hidden, int64_t layers)
    : params_(params), input_(input), hidden_(hidden), layers_(layers) {
  PTUNE_CHECK(input > 0 && hidden > 0 && layers > 0, "LSTM {}: input {}, hidden {}, layers {} must be positive",
              prefix, input, hidden, layers);
  const int64_t H = hidden;
  for (int64_t k = 0; k < layers; ++k) {
    const int64_t in = k == 0 ? input : 2 * H;
    for (const char* sfx : {"", "_reverse"}) {
      const std::string l = fmt::format("_l{}{}", k, sfx);
      Cell cell;
      cell.w_ih = params.add(prefix + "weight_ih" + l, {4 * H, in});
      cell.w_hh = params.add(prefix + "weight_hh" + l, {4 * H, H});
      cell.b_ih = params.add(prefix + "bias_ih" + l, {4 * H}, Decay::kExempt);
      cell.b_hh = params.add(prefix + "bias_hh" + l, {4 * H}, Decay::kExempt);
      cells_.push_back(cell);
    }
  }
}

void Lstm::init(Rng& rng) const {
  const float bound = 1.0f / std::sqrt(float(hidden_));
  for (const Cell& cell : cells_)
    for (size_t i : {cell.w_ih, cell.w_hh, cell.b_ih, cell.b_hh}) {
      Tensor t = params_.value(i);
      rng.fill_uniform(t, -bound, bound);
    }
}

void Lstm::cell_forward(Cell& cell, int dir, const Tensor& x, const Tensor& y, Arena& arena) {
  const int64_t T = x.size(0), H = hidden_, G = 4 * H;
  const Tensor w_hh = params_.value(cell.w_hh), b_hh = params_.value(cell.b_hh);
  // gx (T, 4H) = x W_ihᵀ + b_ih: every timestep's input projection at once.
  Tensor gx = arena.alloc({T, G});
  ops::linear_forward(gx, x, params_.value(cell.w_ih), params_.value(cell.b_ih));
  cell.acts = arena.alloc({T, G});
  cell.c = arena.alloc({T, H});
  Tensor rec = arena.alloc({1, G});  // h_{t−1} W_hhᵀ
  Tensor h_prev, c_prev;             // undefined (zeros) before the first step
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = time_at(dir, s, T);
    if (h_prev.defined()) ops::linear_forward(rec, h_prev, w_hh, Tensor());
    const Tensor c = row(cell.c, t), h = half_row(y, t, dir);
    ops::lstm_cell_forward(row(cell.acts, t), c, h, row(gx, t), h_prev.defined() ? rec : Tensor(), b_hh, c_prev);
    h_prev = h;
    c_prev = c;
  }
}

void Lstm::forward(const Tensor& y, const Tensor& x, Arena& arena, float dropout_p, uint64_t seed,
                   uint64_t offset) {
  const int64_t T = x.size(0), H = hidden_;
  check_tensor(x, "LSTM input", {T, input_});
  check_tensor(y, "LSTM output", {T, 2 * H});
  PTUNE_CHECK(dropout_p >= 0.0f && dropout_p < 1.0f, "LSTM dropout {} outside [0, 1)", dropout_p);
  dropout_p_ = dropout_p;
  dropout_seed_ = seed;
  dropout_offset_ = offset;
  inputs_.assign(size_t(layers_), Tensor());
  outputs_.assign(size_t(layers_), Tensor());
  Tensor in = x;
  for (int64_t k = 0; k < layers_; ++k) {
    inputs_[size_t(k)] = in;
    Tensor out = arena.alloc({T, 2 * H});
    for (int dir = 0; dir < 2; ++dir) cell_forward(cells_[size_t(2 * k + dir)], dir, in, out, arena);
    outputs_[size_t(k)] = out;
    if (k + 1 < layers_ && dropout_p > 0.0f) {
      Tensor dropped = arena.alloc({T, 2 * H});
      ops::dropout_forward(dropped, out, dropout_p, seed, offset + uint64_t(k * T * 2 * H));
      in = dropped;
    } else {
      in = out;
    }
  }
  Tensor(y).copy_from(outputs_.back());
}

void Lstm::cell_backward(const Cell& cell, int dir, const Tensor& x, const Tensor& y, const Tensor& dy,
                         const Tensor& dx, Arena& arena) {
  const int64_t T = x.size(0), H = hidden_, G = 4 * H;
  const Tensor w_hh = params_.value(cell.w_hh);
  Tensor dgates = arena.alloc({T, G});   // ∂/∂ pre-activation gates
  Tensor dh_next = arena.alloc({1, H});  // ∂/∂h_t from step s + 1 through W_hh
  Tensor dc = arena.zeros({1, H});       // ∂/∂c_t from step s + 1, carried
  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = time_at(dir, s, T);
    const Tensor c_prev = s > 0 ? row(cell.c, time_at(dir, s - 1, T)) : Tensor();
    const Tensor dg = row(dgates, t);
    ops::lstm_cell_backward(dg, dc, half_row(dy, t, dir), s + 1 < T ? dh_next : Tensor(), row(cell.acts, t),
                            row(cell.c, t), c_prev);
    if (s > 0) ops::linear_backward_input(dh_next, dg, w_hh, ops::GradMode::kWrite);
  }
  // h_{t−1} of each timestep in this direction's order, (T, H), zero at the
  // direction's first step: y's column block dir shifted by one row (down
  // for the forward direction, up for the reverse).
  Tensor h_prev = arena.alloc({T, H});
  const int64_t first = time_at(dir, 0, T);
  row(h_prev, first).zero_();
  if (dir == 0) ops::copy_columns(h_prev.slice(1, T), 0, y.slice(0, T - 1), 0, H, false);
  else ops::copy_columns(h_prev.slice(0, T - 1), 0, y.slice(1, T), H, H, false);
  ops::linear_backward_params(params_.grad(cell.w_hh), params_.grad(cell.b_hh), dgates, h_prev);
  ops::linear_backward_params(params_.grad(cell.w_ih), params_.grad(cell.b_ih), dgates, x);
  if (dx.defined()) ops::linear_backward_input(dx, dgates, params_.value(cell.w_ih));
}

void Lstm::backward(const Tensor& dx, const Tensor& dy, Arena& arena) {
  PTUNE_CHECK(outputs_.size() == size_t(layers_) && outputs_.back().defined(), "LSTM backward before forward");
  const int64_t T = inputs_[0].size(0), H = hidden_;
  check_tensor(dy, "LSTM output gradient", {T, 2 * H});
  if (dx.defined()) check_tensor(dx, "LSTM input gradient", {T, input_});
  Tensor dout = dy;  // ∂/∂ layer k's output
  for (int64_t k = layers_ - 1; k >= 0; --k) {
    Tensor din = k == 0 ? dx : arena.zeros({T, 2 * H});  // ∂/∂ layer k's input
    for (int dir = 0; dir < 2; ++dir)
      cell_backward(cells_[size_t(2 * k + dir)], dir, inputs_[size_t(k)], outputs_[size_t(k)], dout, din, arena);
    if (k == 0) break;
    if (dropout_p_ > 0.0f) {
      Tensor d = arena.zeros({T, 2 * H});
      ops::dropout_backward(d, din, dropout_p_, dropout_seed_, dropout_offset_ + uint64_t((k - 1) * T * 2 * H));
      dout = d;
    } else {
      dout = din;
    }
  }
}

}  // namespace ptune::peft
