#include <algorithm>

#include "framework/ops/activation.h"
#include "framework/ops/cpu/gemm_cpu.h"
#include "framework/ops/dispatch.h"
#include "framework/ops/linear.h"

namespace ptune::ops {

using cpu::gemm;
using cpu::Trans;

namespace {
// Rows of a (…, features) tensor seen as a matrix.
int64_t rows(const Tensor& t) { return t.numel() / t.size(-1); }
}  // namespace

void linear_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias) {
  PTUNE_ROUTE(x, linear_forward, y, x, w, bias);
  const int64_t n = rows(x), in = x.size(-1), out = w.size(0);
  PTUNE_CHECK(w.size(1) == in && y.size(-1) == out && rows(y) == n, "linear_forward: x {} w {} y {}",
              x.shape().str(), w.shape().str(), y.shape().str());
  float* py = y.data<float>();
  float beta = 0.0f;
  if (bias.defined()) {
    PTUNE_CHECK(bias.numel() == out, "linear_forward: bias {} for {} outputs", bias.shape().str(), out);
    const float* pb = bias.data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < out; ++j) py[i * out + j] = pb[j];
    beta = 1.0f;
  }
  gemm(Trans::kNo, Trans::kYes, n, out, in, 1.0f, x.data<float>(), in, w.data<float>(), in, beta, py, out);
}

// beta 0 for kWrite: BLAS then sets C without reading it (garbage and NaN
// included), and into a zeroed dx beta 0 and beta 1 give the same sums.
void linear_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, GradMode mode) {
  PTUNE_ROUTE(dy, linear_backward_input, dx, dy, w, mode);
  const int64_t n = rows(dy), out = dy.size(-1), in = w.size(1);
  PTUNE_CHECK(w.size(0) == out && dx.size(-1) == in && rows(dx) == n, "linear_backward_input: dy {} w {} dx {}",
              dy.shape().str(), w.shape().str(), dx.shape().str());
  const float beta = mode == GradMode::kWrite ? 0.0f : 1.0f;
  gemm(Trans::kNo, Trans::kNo, n, in, out, 1.0f, dy.data<float>(), out, w.data<float>(), in, beta,
       dx.data<float>(), in);
}

// Exactly linear_forward then activation_forward: the CPU result is the
// unfused model's, bit for bit.
void linear_activation_forward(Activation f, const Tensor& act, const Tensor& pre, const Tensor& x, const Tensor& w,
                               const Tensor& bias) {
  PTUNE_ROUTE(x, linear_activation_forward, f, act, pre, x, w, bias);
  PTUNE_CHECK(act.numel() == pre.numel(), "linear_activation_forward: act {} pre {}", act.shape().str(),
              pre.shape().str());
  linear_forward(pre, x, w, bias);
  activation_forward(f, act, pre);
}

// dact = dy · w (a GEMM with beta 0, so dact need not be zeroed), then
// dpre = 0 + dact ⊙ f'(pre): the same roundings as linear_backward_input
// and activation_backward into zeroed buffers.
void linear_activation_backward_input(Activation f, const Tensor& dpre, const Tensor& dact, const Tensor& dy,
                                      const Tensor& w, const Tensor& pre) {
  PTUNE_ROUTE(dy, linear_activation_backward_input, f, dpre, dact, dy, w, pre);
  const int64_t n = rows(dy), out = dy.size(-1), in = w.size(1);
  PTUNE_CHECK(w.size(0) == out && dpre.size(-1) == in && rows(dpre) == n && dact.numel() == dpre.numel() &&
                  pre.numel() == dpre.numel(),
              "linear_activation_backward_input: dy {} w {} dpre {} dact {} pre {}", dy.shape().str(),
              w.shape().str(), dpre.shape().str(), dact.shape().str(), pre.shape().str());
  gemm(Trans::kNo, Trans::kNo, n, in, out, 1.0f, dy.data<float>(), out, w.data<float>(), in, 0.0f,
       dact.data<float>(), in);
  std::fill_n(dpre.data<float>(), dpre.numel(), 0.0f);
  activation_backward(f, dpre, dact, pre);
}

void linear_backward_params(const Tensor& dw, const Tensor& dbias, const Tensor& dy, const Tensor& x) {
  PTUNE_ROUTE(dy, linear_backward_params, dw, dbias, dy, x);
  const int64_t n = rows(dy), out = dy.size(-1), in = x.size(-1);
  PTUNE_CHECK(rows(x) == n && dw.size(0) == out && dw.size(1) == in, "linear_backward_params: dy {} x {} dw {}",
              dy.shape().str(), x.shape().str(), dw.shape().str());
  gemm(Trans::kYes, Trans::kNo, out, in, n, 1.0f, dy.data<float>(), out, x.data<float>(), in, 1.0f,
       dw.data<float>(), in);
  if (dbias.defined()) {
    const float* pdy = dy.data<float>();
    float* pdb = dbias.data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < out; ++j) {
      float s = 0.0f;
      for (int64_t i = 0; i < n; ++i) s += pdy[i * out + j];
      pdb[j] += s;
    }
  }
}

}  // namespace ptune::ops
