// The LSTM cell's pointwise step on the GPU (f32: the prompt encoder's
// master copies), one thread per hidden unit of each row, exactly the math
// of ops/cpu/recurrent_cpu.cpp. Forward writes; backward writes dgates and
// updates dc in place.
//
// A step is one launch over N·H units: with the bi-LSTM's N = 1 and H of a
// few hundred that is a block or two, dwarfed by the step's W_hh GEMV; the
// recurrence is latency-bound, not bandwidth-bound, so no vector loads.
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"
#include "framework/ops/recurrent.h"

namespace ptune::ops::cuda {

namespace {

constexpr int kThreads = 256;

// Unit u of (N, H) is column j = u mod H of row n = u div H; its gate q sits
// at column qH + j of row n of the (N, 4H) gate matrices. rec and c_prev may
// be null (zeros: the first step).
__global__ void lstm_cell_forward_kernel(float* acts, float* c, float* h, const float* gx, const float* rec,
                                         const float* b_hh, const float* c_prev, int64_t n_units, int64_t H) {
  PTUNE_GRID_STRIDE(u, n_units) {
    const int64_t j = u % H, row = (u / H) * 4 * H + j;
    float pre[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) pre[q] = gx[row + q * H] + (rec ? rec[row + q * H] : 0.0f) + b_hh[q * H + j];
    const float i_g = sigmoid(pre[0]), f_g = sigmoid(pre[1]), g_g = tanhf(pre[2]), o_g = sigmoid(pre[3]);
    const float c_t = (c_prev ? f_g * c_prev[u] : 0.0f) + i_g * g_g;
    acts[row] = i_g;
    acts[row + H] = f_g;
    acts[row + 2 * H] = g_g;
    acts[row + 3 * H] = o_g;
    c[u] = c_t;
    h[u] = o_g * tanhf(c_t);
  }
}

// dh_rec and c_prev may be null (zeros). dc is read and overwritten by the
// unit's own thread only.
__global__ void lstm_cell_backward_kernel(float* dgates, float* dc, const float* dh_out, const float* dh_rec,
                                          const float* acts, const float* c, const float* c_prev, int64_t n_units,
                                          int64_t H) {
  PTUNE_GRID_STRIDE(u, n_units) {
    const int64_t j = u % H, row = (u / H) * 4 * H + j;
    const float i_g = acts[row], f_g = acts[row + H], g_g = acts[row + 2 * H], o_g = acts[row + 3 * H];
    const float tc = tanhf(c[u]);
    const float dh = dh_out[u] + (dh_rec ? dh_rec[u] : 0.0f);
    const float dc_t = dc[u] + dh * o_g * (1.0f - tc * tc);
    dgates[row] = dc_t * g_g * i_g * (1.0f - i_g);
    dgates[row + H] = (c_prev ? dc_t * c_prev[u] : 0.0f) * f_g * (1.0f - f_g);
    dgates[row + 2 * H] = dc_t * i_g * (1.0f - g_g * g_g);
    dgates[row + 3 * H] = dh * tc * o_g * (1.0f - o_g);
    dc[u] = dc_t * f_g;
  }
}

float* mptr(const Tensor& t) { return static_cast<float*>(t.raw()); }
// Null for an undefined (all-zero) optional operand.
const float* ptr(const Tensor& t) { return t.defined() ? static_cast<const float*>(t.raw()) : nullptr; }

}  // namespace

void lstm_cell_forward(const Tensor& acts, const Tensor& c, const Tensor& h, const Tensor& gx, const Tensor& rec,
                       const Tensor& b_hh, const Tensor& c_prev, const Stream& stream) {
  const LstmCellShape s = lstm_cell_forward_shape(acts, c, h, gx, rec, b_hh, c_prev);
  check_cuda_tensor(acts, "acts", "lstm_cell_forward");
  const int64_t n = s.rows * s.hidden;
  if (n == 0) return;
  lstm_cell_forward_kernel<<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
      mptr(acts), mptr(c), mptr(h), ptr(gx), ptr(rec), ptr(b_hh), ptr(c_prev), n, s.hidden);
  PTUNE_CUDA_LAUNCH_CHECK();
}

void lstm_cell_backward(const Tensor& dgates, const Tensor& dc, const Tensor& dh_out, const Tensor& dh_rec,
                        const Tensor& acts, const Tensor& c, const Tensor& c_prev, const Stream& stream) {
  const LstmCellShape s = lstm_cell_backward_shape(dgates, dc, dh_out, dh_rec, acts, c, c_prev);
  check_cuda_tensor(acts, "acts", "lstm_cell_backward");
  const int64_t n = s.rows * s.hidden;
  if (n == 0) return;
  lstm_cell_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, raw(stream)>>>(
      mptr(dgates), mptr(dc), ptr(dh_out), ptr(dh_rec), ptr(acts), ptr(c), ptr(c_prev), n, s.hidden);
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
