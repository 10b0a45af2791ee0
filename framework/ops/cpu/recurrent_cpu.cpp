// The LSTM cell's pointwise step on the CPU: the reference the CUDA kernels
// (ops/cuda/recurrent_cuda.cu) are tested against. Forward writes; backward
// writes dgates and updates dc in place.
#include <cmath>

#include "framework/ops/cpu/vec_math.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/recurrent.h"

namespace ptune::ops {

namespace {

// Checks `t` (required or, when `optional`, possibly undefined) against
// `shape`, f32, on `device`.
void check_operand(const char* op, const char* name, const Tensor& t, const Shape& shape, Device device,
                   bool optional = false) {
  if (optional && !t.defined()) return;
  PTUNE_CHECK(t.defined(), "{}: {} is undefined", op, name);
  PTUNE_CHECK(t.shape() == shape && t.dtype() == DType::kF32, "{}: {} is {} {}, expected f32 {}", op, name,
              dtype_name(t.dtype()), t.shape().str(), shape.str());
  PTUNE_CHECK(t.device() == device, "{}: {} lives on {}, the other operands on {}", op, name, t.device().str(),
              device.str());
}

// N and H from the saved activations acts (N, 4H), which both directions have.
LstmCellShape from_acts(const char* op, const Tensor& acts) {
  PTUNE_CHECK(acts.dim() == 2 && acts.size(1) > 0 && acts.size(1) % 4 == 0,
              "{}: acts {} must be (N, 4H)", op, acts.shape().str());
  return {acts.size(0), acts.size(1) / 4};
}

}  // namespace

LstmCellShape lstm_cell_forward_shape(const Tensor& acts, const Tensor& c, const Tensor& h, const Tensor& gx,
                                      const Tensor& rec, const Tensor& b_hh, const Tensor& c_prev) {
  const char* op = "lstm_cell_forward";
  const LstmCellShape s = from_acts(op, acts);
  const Shape gates{s.rows, 4 * s.hidden}, state{s.rows, s.hidden};
  const Device d = acts.device();
  check_operand(op, "acts", acts, gates, d);
  check_operand(op, "c", c, state, d);
  check_operand(op, "h", h, state, d);
  check_operand(op, "gx", gx, gates, d);
  check_operand(op, "rec", rec, gates, d, true);
  check_operand(op, "b_hh", b_hh, {4 * s.hidden}, d);
  check_operand(op, "c_prev", c_prev, state, d, true);
  return s;
}

LstmCellShape lstm_cell_backward_shape(const Tensor& dgates, const Tensor& dc, const Tensor& dh_out,
                                       const Tensor& dh_rec, const Tensor& acts, const Tensor& c,
                                       const Tensor& c_prev) {
  const char* op = "lstm_cell_backward";
  const LstmCellShape s = from_acts(op, acts);
  const Shape gates{s.rows, 4 * s.hidden}, state{s.rows, s.hidden};
  const Device d = acts.device();
  check_operand(op, "dgates", dgates, gates, d);
  check_operand(op, "dc", dc, state, d);
  check_operand(op, "dh_out", dh_out, state, d);
  check_operand(op, "dh_rec", dh_rec, state, d, true);
  check_operand(op, "acts", acts, gates, d);
  check_operand(op, "c", c, state, d);
  check_operand(op, "c_prev", c_prev, state, d, true);
  return s;
}

void lstm_cell_forward(const Tensor& acts, const Tensor& c, const Tensor& h, const Tensor& gx, const Tensor& rec,
                       const Tensor& b_hh, const Tensor& c_prev) {
  PTUNE_ROUTE(gx, lstm_cell_forward, acts, c, h, gx, rec, b_hh, c_prev);
  const LstmCellShape s = lstm_cell_forward_shape(acts, c, h, gx, rec, b_hh, c_prev);
  const int64_t N = s.rows, H = s.hidden;
  const float* pgx = gx.data<float>();
  const float* prec = rec.defined() ? rec.data<float>() : nullptr;
  const float* pb = b_hh.data<float>();
  const float* pcp = c_prev.defined() ? c_prev.data<float>() : nullptr;
  float* pa = acts.data<float>();
  float* pc = c.data<float>();
  float* ph = h.data<float>();
#pragma omp parallel for collapse(2) schedule(static) if (N * H >= 512)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < H; ++j) {
      const int64_t row = n * 4 * H + j;  // gate q of unit j at row + qH
      float pre[4];
      for (int q = 0; q < 4; ++q)
        pre[q] = pgx[row + q * H] + (prec ? prec[row + q * H] : 0.0f) + pb[q * H + j];
      const float i_g = sigmoid_simd(pre[0]), f_g = sigmoid_simd(pre[1]), g_g = std::tanh(pre[2]),
                  o_g = sigmoid_simd(pre[3]);
      const float c_t = (pcp ? f_g * pcp[n * H + j] : 0.0f) + i_g * g_g;
      float* a = pa + row;
      a[0] = i_g;
      a[H] = f_g;
      a[2 * H] = g_g;
      a[3 * H] = o_g;
      pc[n * H + j] = c_t;
      ph[n * H + j] = o_g * std::tanh(c_t);
    }
}

void lstm_cell_backward(const Tensor& dgates, const Tensor& dc, const Tensor& dh_out, const Tensor& dh_rec,
                        const Tensor& acts, const Tensor& c, const Tensor& c_prev) {
  PTUNE_ROUTE(acts, lstm_cell_backward, dgates, dc, dh_out, dh_rec, acts, c, c_prev);
  const LstmCellShape s = lstm_cell_backward_shape(dgates, dc, dh_out, dh_rec, acts, c, c_prev);
  const int64_t N = s.rows, H = s.hidden;
  const float* pa = acts.data<float>();
  const float* pc = c.data<float>();
  const float* pcp = c_prev.defined() ? c_prev.data<float>() : nullptr;
  const float* pdo = dh_out.data<float>();
  const float* pdr = dh_rec.defined() ? dh_rec.data<float>() : nullptr;
  float* pdg = dgates.data<float>();
  float* pdc = dc.data<float>();
#pragma omp parallel for collapse(2) schedule(static) if (N * H >= 512)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < H; ++j) {
      const int64_t u = n * H + j;  // the unit's index in (N, H)
      const float* a = pa + n * 4 * H + j;
      const float i_g = a[0], f_g = a[H], g_g = a[2 * H], o_g = a[3 * H];
      const float tc = std::tanh(pc[u]);
      const float dh = pdo[u] + (pdr ? pdr[u] : 0.0f);
      const float dc_t = pdc[u] + dh * o_g * (1.0f - tc * tc);
      float* dg = pdg + n * 4 * H + j;
      dg[0] = dc_t * g_g * i_g * (1.0f - i_g);
      dg[H] = (pcp ? dc_t * pcp[u] : 0.0f) * f_g * (1.0f - f_g);
      dg[2 * H] = dc_t * i_g * (1.0f - g_g * g_g);
      dg[3 * H] = dh * tc * o_g * (1.0f - o_g);
      pdc[u] = dc_t * f_g;
    }
}

}  // namespace ptune::ops
