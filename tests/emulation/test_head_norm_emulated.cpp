// The per-head q/k RMSNorm kernels (framework/ops/cuda/head_norm.cuh), run
// on the CPU through cuda_emulation.h with the CUDA build's block size,
// against the CPU op (ops::head_rms_norm_*, itself checked against the norm
// of the copied-out heads and by finite differences): the normalised heads,
// the saved input and rstd, the backward, and the columns around them left
// alone. tests/cuda/test_cuda_llama_ops.cpp runs the same comparison on a GPU.
//
// Both paths of head_norm.cuh: the lane kernels (d = 32·PER, a lane's PER
// elements in one access: d = 32, 64, 128, 256) and the strided kernels,
// which take every d (d = 12: lanes own 0 or 1 elements) and are run on the
// lane kernels' dims too. The q heads (column 0) and the k heads after them,
// f32 and bf16, and a grid of one block, so that warps walk several vectors
// (27 q vectors over 8 warps). lane_path() is checked to send misaligned
// operands to the strided kernels.
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

// Which kernels run_case() launches.
enum class Path { kLane, kStrided };

template <class T>
void run_case(int64_t d, bool k_heads, Path path, unsigned grid_blocks) {
  const int64_t n = 9, heads_q = 3, heads_kv = 1, width = (heads_q + 2 * heads_kv) * d;
  const int64_t col = k_heads ? heads_q * d : 0, heads = k_heads ? heads_kv : heads_q, vectors = n * heads;
  const bool bf = std::is_same_v<T, bf16>;
  SCOPED_TRACE(std::string(bf ? "bf16" : "f32") + " d=" + std::to_string(d) + (k_heads ? " k" : " q") +
               (path == Path::kLane ? " lane" : " strided") + " blocks=" + std::to_string(grid_blocks));
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
  // The launcher's choice: the lane kernels wherever lane_path() allows them.
  const int per = head_norm::lane_path(d, gx.data(), gsaved.data(), gw.data(), width, col);
  ASSERT_EQ(per, d == 32 || d == 64 || d == 128 || d == 256 ? int(d / 32) : 0);
  ASSERT_TRUE(path == Path::kStrided || per > 0);
  emulation::launch(dim3(grid_blocks), head_norm::kThreads, 0, [&] {
    if (path == Path::kStrided)
      head_norm::forward_kernel<T, T>(gx.data(), gsaved.data(), grstd.data(), gw.data(), vectors, heads, width, col, d,
                                      1e-6f);
    else
      head_norm::with_per(per, [&](auto p) {
        head_norm::forward_lane_kernel<T, T, decltype(p)::value>(gx.data(), gsaved.data(), grstd.data(), gw.data(),
                                                                 vectors, heads, width, col, 1e-6f);
      });
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
    if (path == Path::kStrided)
      head_norm::backward_kernel<T, T>(gdx.data(), gsaved.data(), grstd.data(), gw.data(), vectors, heads, width, col,
                                       d);
    else
      head_norm::with_per(per, [&](auto p) {
        head_norm::backward_lane_kernel<T, T, decltype(p)::value>(gdx.data(), gsaved.data(), grstd.data(), gw.data(),
                                                                  vectors, heads, width, col);
      });
  });
  EXPECT_LE(rel_err(gdx, dx), tol) << "backward";
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < width; ++c)
      if (c < col || c >= col + heads * d)
        ASSERT_EQ(at(gdx, r * width + c), dy.data<float>()[r * width + c])
            << "backward: column " << c << " of row " << r;
}

TEST(HeadNormEmulated, MatchesTheCpuOp) {
  for (const int64_t d : {12, 32, 64, 128, 256})
    for (const bool k_heads : {false, true})
      for (const Path path : {Path::kLane, Path::kStrided}) {
        if (path == Path::kLane && d % 32 != 0) continue;
        const int64_t vectors = 9 * (k_heads ? 1 : 3);
        for (const unsigned blocks : {head_norm::blocks(vectors), 1u}) {
          run_case<float>(d, k_heads, path, blocks);
          run_case<bf16>(d, k_heads, path, blocks);
        }
      }
}

// The lane kernels need a lane's PER elements aligned to PER·sizeof(T) (16
// bytes at most) in x, saved and w; anything else takes the strided ones.
TEST(HeadNormEmulated, MisalignedOperandsTakeTheStridedKernels) {
  alignas(16) bf16 x[4096] = {}, saved[1024] = {};
  alignas(16) float w[256] = {};
  EXPECT_EQ(head_norm::lane_path(128, x, saved, w, 640, 384), 4);
  EXPECT_EQ(head_norm::lane_path(256, x, saved, w, 1280, 256), 8);
  EXPECT_EQ(head_norm::lane_path(32, x + 1, saved + 1, w, 161, 1), 1);  // bf16 PER 1: 2-byte accesses
  EXPECT_EQ(head_norm::lane_path(96, x, saved, w, 640, 0), 0);          // d not 32·{1, 2, 4, 8}
  EXPECT_EQ(head_norm::lane_path(128, x + 2, saved, w, 640, 0), 0);     // x 4 bytes off 8
  EXPECT_EQ(head_norm::lane_path(128, x, saved + 1, w, 640, 0), 0);     // saved
  EXPECT_EQ(head_norm::lane_path(128, x, saved, w + 2, 640, 0), 0);     // w (f32: 16 bytes)
  EXPECT_EQ(head_norm::lane_path(128, x, saved, w, 642, 0), 0);         // row stride
  EXPECT_EQ(head_norm::lane_path(128, x, saved, w, 640, 2), 0);         // column
  EXPECT_EQ(head_norm::lane_path(256, x + 4, saved, w, 640, 0), 0);     // bf16 PER 8: 16 bytes
}

}  // namespace
}  // namespace ptune
