// The per-head q/k RMSNorm kernels (framework/ops/cuda/head_norm.cuh), run
// on the CPU through cuda_emulation.h with the CUDA build's block size,
// against the CPU op (ops::head_rms_norm_*, itself checked against the norm
// of the copied-out heads and by finite differences): the normalised heads,
// the saved input and rstd, the backward, and the columns around them left
// alone. tests/cuda/test_cuda_llama_ops.cpp runs the same comparison on a GPU.
//
// Head dims under, at and over a warp (d = 12, 64, 128, so lanes own 0, 1, 2
// or 4 elements), the q heads (column 0) and the k heads after them, f32 and
// bf16, and a grid of one block, so that warps walk several vectors.
#include "emulation/cuda_emulation.h"
// After the emulation: the kernels compile against it.
#include "framework/ops/cuda/head_norm.cuh"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "framework/core/rng.h"
#include "framework/ops/layernorm.h"

namespace ptune {
namespace {

namespace head_norm = ops::cuda::head_norm;
using ops::cuda::bf16;

template <class T>
std::vector<T> to_device_type(const Tensor& t) {  // f32 → T, element by element
  std::vector<T> v(size_t(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = ops::cuda::from_f<T>(t.data<float>()[i]);
  return v;
}
template <class T>
float at(const std::vector<T>& v, int64_t i) {
  return ops::cuda::to_f(v[size_t(i)]);
}

// Rounds t in place to what T holds (both sides then start from the same values).
template <class T>
void round_to(const Tensor& t) {
  const std::vector<T> v = to_device_type<T>(t);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = at(v, i);
}

// max |got − want| / max(1, max |want|).
template <class T>
double rel_err(const std::vector<T>& got, const Tensor& want) {
  double err = 0.0, scale = 1.0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    err = std::max(err, double(std::fabs(at(got, i) - want.data<float>()[i])));
    scale = std::max(scale, double(std::fabs(want.data<float>()[i])));
  }
  return err / scale;
}

template <class T>
void run_case(int64_t d, bool k_heads, unsigned grid_blocks) {
  const int64_t n = 5, heads_q = 4, heads_kv = 2, width = (heads_q + 2 * heads_kv) * d;
  const int64_t col = k_heads ? heads_q * d : 0, heads = k_heads ? heads_kv : heads_q, vectors = n * heads;
  const bool bf = std::is_same_v<T, bf16>;
  SCOPED_TRACE(std::string(bf ? "bf16" : "f32") + " d=" + std::to_string(d) + (k_heads ? " k" : " q") +
               " blocks=" + std::to_string(grid_blocks));
  // Inputs as the device holds them (rounded to bf16 on both sides).
  Tensor x = Tensor::empty({n, width}, DType::kF32), w = Tensor::empty({d}, DType::kF32);
  Rng(uint64_t(d) * 7 + k_heads).fill_normal(x, 0.0f, 2.0f);
  Rng(uint64_t(d) * 11 + 1).fill_normal(w, 1.0f, 0.3f);
  round_to<T>(x);
  round_to<T>(w);

  Tensor y = x.clone(), saved = Tensor::empty({vectors, d}, DType::kF32), rstd = Tensor::empty({vectors}, DType::kF32);
  ops::head_rms_norm_forward(y, col, saved, rstd, w, 1e-6f);
  std::vector<T> gx = to_device_type<T>(x), gsaved(size_t(vectors * d)), gw = to_device_type<T>(w);
  std::vector<float> grstd(size_t(vectors), NAN);
  emulation::launch(dim3(grid_blocks), head_norm::kThreads, 0, [&] {
    head_norm::forward_kernel<T, T>(gx.data(), gsaved.data(), grstd.data(), gw.data(), vectors, heads, width, col, d,
                                    1e-6f);
  });
  const double tol = bf ? 1e-2 : 1e-6;
  EXPECT_LE(rel_err(gx, y), tol) << "normalised heads";
  EXPECT_LE(rel_err(gsaved, saved), 0.0) << "saved input";
  for (int64_t k = 0; k < vectors; ++k)
    EXPECT_NEAR(grstd[size_t(k)], rstd.data<float>()[k], 1e-6 * rstd.data<float>()[k]) << "rstd " << k;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < width; ++c)
      if (c < col || c >= col + heads * d)
        ASSERT_EQ(at(gx, r * width + c), x.data<float>()[r * width + c]) << "column " << c << " of row " << r;

  // Backward from the same saved state on both sides.
  Tensor dy = Tensor::empty({n, width}, DType::kF32);
  Rng(uint64_t(d) * 13 + 5).fill_normal(dy, 0.0f, 1.0f);
  round_to<T>(dy);
  Tensor dx = dy.clone();
  ops::head_rms_norm_backward(dx, col, saved, rstd, w);
  std::vector<T> gdx = to_device_type<T>(dy);
  emulation::launch(dim3(grid_blocks), head_norm::kThreads, 0, [&] {
    head_norm::backward_kernel<T, T>(gdx.data(), gsaved.data(), grstd.data(), gw.data(), vectors, heads, width, col,
                                     d);
  });
  EXPECT_LE(rel_err(gdx, dx), tol) << "backward";
}

TEST(HeadNormEmulated, MatchesTheCpuOp) {
  for (const int64_t d : {12, 64, 128})
    for (const bool k_heads : {false, true}) {
      const int64_t vectors = 5 * (k_heads ? 2 : 4);
      for (const unsigned blocks : {head_norm::blocks(vectors), 1u}) {
        run_case<float>(d, k_heads, blocks);
        run_case<bf16>(d, k_heads, blocks);
      }
    }
}

}  // namespace
}  // namespace ptune
