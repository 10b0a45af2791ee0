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

void linear_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w) {
  PTUNE_ROUTE(dy, linear_backward_input, dx, dy, w);
  const int64_t n = rows(dy), out = dy.size(-1), in = w.size(1);
  PTUNE_CHECK(w.size(0) == out && dx.size(-1) == in && rows(dx) == n, "linear_backward_input: dy {} w {} dx {}",
              dy.shape().str(), w.shape().str(), dx.shape().str());
  gemm(Trans::kNo, Trans::kNo, n, in, out, 1.0f, dy.data<float>(), out, w.data<float>(), in, 1.0f,
       dx.data<float>(), in);
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
