// Bidirectional LSTM: the input projections of all timesteps are one GEMM
// per direction; the recurrence is one (1, H)·W_hhᵀ GEMV per step plus a
// fused pointwise cell. Forward writes (=), backward accumulates (+=).
#include "framework/peft/lstm.h"

#include <cmath>

#include "framework/core/rng.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/linear.h"

namespace ptune::peft {

namespace {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// A (1, n) view of n floats at p (a row of a larger matrix).
Tensor row_view(float* p, int64_t n) { return Tensor::borrow(p, {1, n}, DType::kF32); }

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
  const Tensor w_hh = params_.value(cell.w_hh);
  const float* b_hh = params_.value(cell.b_hh).data<float>();
  // gx (T, 4H) = x W_ihᵀ + b_ih: every timestep's input projection at once.
  Tensor gx = arena.alloc({T, G});
  ops::linear_forward(gx, x, params_.value(cell.w_ih), params_.value(cell.b_ih));
  cell.acts = arena.alloc({T, G});
  cell.c = arena.alloc({T, H});
  Tensor rec = arena.alloc({1, G});  // h_{t−1} W_hhᵀ
  float* py = y.data<float>();
  const float* pgx = gx.data<float>();
  float* pacts = cell.acts.data<float>();
  float* pc = cell.c.data<float>();
  float* prec = rec.data<float>();
  float* h_prev = nullptr;
  const float* c_prev = nullptr;
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = time_at(dir, s, T);
    if (h_prev) {
      ops::linear_forward(rec, row_view(h_prev, H), w_hh, Tensor());
    } else {
      rec.zero_();
    }
    const float* g_in = pgx + t * G;
    float* a = pacts + t * G;
    float* c = pc + t * H;
    float* h = py + t * 2 * H + dir * H;
#pragma omp parallel for schedule(static) if (H >= 512)
    for (int64_t j = 0; j < H; ++j) {
      const float i_g = sigmoid(g_in[j] + prec[j] + b_hh[j]);
      const float f_g = sigmoid(g_in[H + j] + prec[H + j] + b_hh[H + j]);
      const float g_g = std::tanh(g_in[2 * H + j] + prec[2 * H + j] + b_hh[2 * H + j]);
      const float o_g = sigmoid(g_in[3 * H + j] + prec[3 * H + j] + b_hh[3 * H + j]);
      const float c_t = (c_prev ? f_g * c_prev[j] : 0.0f) + i_g * g_g;
      a[j] = i_g;
      a[H + j] = f_g;
      a[2 * H + j] = g_g;
      a[3 * H + j] = o_g;
      c[j] = c_t;
      h[j] = o_g * std::tanh(c_t);
    }
    h_prev = h;
    c_prev = c;
  }
}

void Lstm::forward(const Tensor& y, const Tensor& x, Arena& arena, float dropout_p, uint64_t seed,
                   uint64_t offset) {
  const int64_t T = x.size(0), H = hidden_;
  // The recurrence's pointwise cells are host loops (no CUDA kernel yet).
  PTUNE_CHECK(x.device().is_cpu(),
              "P-Tuning's LSTM encoder runs on the CPU only in this version; on {} use method.encoder: mlp",
              x.device().str());
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
  Tensor dgates = arena.alloc({T, G});  // ∂/∂ pre-activation gates
  Tensor dh_next = arena.alloc({1, H});  // from step s + 1 through W_hh
  Tensor dc_next = arena.zeros({H});
  dh_next.zero_();
  const float* pacts = cell.acts.data<float>();
  const float* pc = cell.c.data<float>();
  const float* pdy = dy.data<float>();
  float* pdg = dgates.data<float>();
  float* pdh = dh_next.data<float>();
  float* pdc = dc_next.data<float>();
  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = time_at(dir, s, T);
    const float* a = pacts + t * G;
    const float* c_prev = s > 0 ? pc + time_at(dir, s - 1, T) * H : nullptr;
    const float* dh_out = pdy + t * 2 * H + dir * H;
    float* dg = pdg + t * G;
#pragma omp parallel for schedule(static) if (H >= 512)
    for (int64_t j = 0; j < H; ++j) {
      const float i_g = a[j], f_g = a[H + j], g_g = a[2 * H + j], o_g = a[3 * H + j];
      const float tc = std::tanh(pc[t * H + j]);
      const float dh = dh_out[j] + pdh[j];
      const float dc = pdc[j] + dh * o_g * (1.0f - tc * tc);
      dg[j] = dc * g_g * i_g * (1.0f - i_g);
      dg[H + j] = (c_prev ? dc * c_prev[j] : 0.0f) * f_g * (1.0f - f_g);
      dg[2 * H + j] = dc * i_g * (1.0f - g_g * g_g);
      dg[3 * H + j] = dh * tc * o_g * (1.0f - o_g);
      pdc[j] = dc * f_g;
    }
    dh_next.zero_();
    if (s > 0) ops::linear_backward_input(dh_next, row_view(dg, G), w_hh);
  }
  // h_{t−1} of each timestep in this direction's order, (T, H); zero at its start.
  Tensor h_prev = arena.alloc({T, H});
  const float* py = y.data<float>();
  float* php = h_prev.data<float>();
  for (int64_t s = 0; s < T; ++s) {
    float* dst = php + time_at(dir, s, T) * H;
    const float* src = s > 0 ? py + time_at(dir, s - 1, T) * 2 * H + dir * H : nullptr;
    for (int64_t j = 0; j < H; ++j) dst[j] = src ? src[j] : 0.0f;
  }
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
