// The 16-byte (Vec) paths of the memory-bound CUDA kernels (elementwise,
// norms, the fused gated activations) against the CPU ops: sizes with a
// vector body and a scalar tail, row widths that are and are not multiples
// of the vector width (8 bf16 / 4 f32), rows wider than the norm kernels'
// register cache, and views that start 3 elements into their buffer (not
// 16-byte aligned: the scalar fallback) or 8 elements in (aligned: the
// vector path on a view). f32 and bf16; skips without a GPU.
#include <gtest/gtest.h>

#include <cstring>

#include "framework/core/stream.h"
#include "framework/ops/activation.h"
#include "framework/ops/cuda/kernels.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/layernorm.h"
#include "framework/ops/swiglu.h"
#include "cuda/cuda_test_util.h"

namespace ptune {
namespace {

using namespace cuda_test;  // NOLINT: the shared helpers

class CudaVectorized : public CudaOps {
 protected:
  // `cpu` (f32, any shape) on the GPU in the dtype under test, as a view
  // that starts `skip` elements into a larger buffer.
  Tensor gpu_view(const Tensor& cpu, int64_t skip) const {
    const int64_t n = cpu.numel();
    Tensor host = Tensor::zeros({skip + n}, DType::kF32);
    std::memcpy(host.data<float>() + skip, cpu.data<float>(), size_t(n) * sizeof(float));
    return to_gpu(host, dt()).slice(skip, skip + n).view(cpu.shape());
  }
};

// Element counts: tail only (3), body + tail (8·37 + 5), body only (1024).
constexpr int64_t kSizes[] = {3, 301, 1024};
// Where the views start: aligned, off by 3 elements, 16/32 bytes in.
constexpr int64_t kSkips[] = {0, 3, 8};

TEST_P(CudaVectorized, ElementwiseBodyTailAndMisaligned) {
  SKIP_WITHOUT_GPU();
  for (int64_t n : kSizes) {
    for (int64_t skip : kSkips) {
      SCOPED_TRACE(testing::Message() << "n " << n << " skip " << skip);
      const Shape s{n};
      Tensor a = in(s), b = in(s), dx = in(s);
      Tensor ga = gpu_view(a, skip), gb = gpu_view(b, skip + 1), gdx = gpu_view(dx, skip);

      Tensor y = Tensor::empty(s, DType::kF32), gy = gpu_view(randn(s), skip);
      ops::add_forward(y, a, b);
      ops::add_forward(gy, ga, gb);
      EXPECT_CLOSE(gy, y, tol());

      // Philox offset 1001: the vector chunks straddle the 4-index blocks.
      ops::dropout_forward(y, a, 0.3f, 77, 1001);
      ops::dropout_forward(gy, ga, 0.3f, 77, 1001);
      EXPECT_CLOSE(gy, y, dt() == DType::kF32 ? 0.0f : tol());  // same mask, same product

      ops::dropout_backward(dx, b, 0.3f, 77, 1001);
      ops::dropout_backward(gdx, gb, 0.3f, 77, 1001);
      EXPECT_CLOSE(gdx, dx, tol());

      ops::accumulate(dx, a);
      ops::accumulate(gdx, ga);
      ops::scale_(dx, 0.5f);
      ops::scale_(gdx, 0.5f);
      EXPECT_CLOSE(gdx, dx, tol());

      // Mixed dtypes: an f32 master gradient += a gradient in the tested dtype.
      Tensor master = randn(s);
      Tensor gmaster_view = Tensor::zeros({skip + n}, DType::kF32, kGpu).slice(skip, skip + n);
      gmaster_view.copy_from(master);
      ops::accumulate(master, a);
      ops::accumulate(gmaster_view, ga);
      EXPECT_CLOSE(gmaster_view, master, kF32Tol);

      for (ops::Activation f : {ops::Activation::kGeluTanh, ops::Activation::kGeluErf, ops::Activation::kRelu,
                                ops::Activation::kTanh, ops::Activation::kSilu}) {
        SCOPED_TRACE(int(f));
        Tensor ya = Tensor::empty(s, DType::kF32), gya = gpu_view(randn(s), skip + 2);
        ops::activation_forward(f, ya, a);
        ops::activation_forward(f, gya, ga);
        EXPECT_CLOSE(gya, ya, tol());
        Tensor d = in(s), gd = gpu_view(d, skip);
        ops::activation_backward(f, d, b, a);
        ops::activation_backward(f, gd, gb, ga);
        EXPECT_CLOSE(gd, d, tol());
      }
    }
  }
}

struct NormCase {
  int64_t n, c;
};
// Widths: GPT-2 medium / large (vector path, row in registers), 1003 (not a
// multiple of 4 or 8: scalar), 64 with more rows than backward blocks (dw /
// db partials over several rows), 8200 and 16400 (wider than the register
// cache for f32 / bf16, and too wide for shared-memory partials).
constexpr NormCase kNormCases[] = {{5, 1024}, {3, 2048}, {4, 1003}, {600, 64}, {2, 8200}, {2, 16400}};

TEST_P(CudaVectorized, NormsBodyTailAndMisaligned) {
  SKIP_WITHOUT_GPU();
  const float grad_tol = dt() == DType::kF32 ? kF32Tol : kBf16Tol;
  for (const NormCase& nc : kNormCases) {
    for (int64_t skip : {int64_t(0), int64_t(3)}) {
      for (ops::NormKind kind : {ops::NormKind::kLayerNorm, ops::NormKind::kRmsNorm}) {
        const bool layer = kind == ops::NormKind::kLayerNorm;
        SCOPED_TRACE(testing::Message() << "n " << nc.n << " c " << nc.c << " skip " << skip << " layer " << layer);
        const int64_t n = nc.n, c = nc.c;
        Tensor x = in({n, c}), w = in({c}), b = layer ? in({c}) : Tensor(), dy = in({n, c}), dx = in({n, c});
        Tensor y = Tensor::empty({n, c}, DType::kF32), mean = Tensor::empty({n}, DType::kF32),
               rstd = Tensor::empty({n}, DType::kF32);
        ops::norm_forward(kind, y, layer ? mean : Tensor(), rstd, x, w, b, 1e-5f);
        Tensor gx = gpu_view(x, skip), gw = to_gpu(w, dt()), gb = layer ? to_gpu(b, dt()) : Tensor();
        Tensor gy = gpu_view(randn({n, c}), skip), gmean = Tensor::empty({n}, DType::kF32, kGpu),
               grstd = Tensor::empty({n}, DType::kF32, kGpu);
        ops::norm_forward(kind, gy, layer ? gmean : Tensor(), grstd, gx, gw, gb, 1e-5f);
        EXPECT_CLOSE(gy, y, tol());
        EXPECT_CLOSE(grstd, rstd, tol());

        Tensor dw = randn({c}), db = randn({c});
        Tensor gdw = dw.to(kGpu), gdb = db.to(kGpu), gdx = gpu_view(dx, skip), gdy = gpu_view(dy, skip);
        ops::norm_backward(kind, dx, dw, layer ? db : Tensor(), dy, x, w, layer ? mean : Tensor(), rstd);
        ops::norm_backward(kind, gdx, gdw, layer ? gdb : Tensor(), gdy, gx, gw, layer ? gmean : Tensor(), grstd);
        EXPECT_CLOSE(gdx, dx, tol());
        EXPECT_CLOSE(gdw, dw, grad_tol);
        if (layer) EXPECT_CLOSE(gdb, db, grad_tol);

        // A frozen norm (no dw / db): the dx-only kernel.
        Tensor dx2 = in({n, c}), gdx2 = gpu_view(dx2, skip);
        ops::norm_backward(kind, dx2, Tensor(), Tensor(), dy, x, w, layer ? mean : Tensor(), rstd);
        ops::norm_backward(kind, gdx2, Tensor(), Tensor(), gdy, gx, gw, layer ? gmean : Tensor(), grstd);
        EXPECT_CLOSE(gdx2, dx2, tol());
      }
    }
  }
}

TEST_P(CudaVectorized, FusedResidualDropoutNormBodyTailAndMisaligned) {
  SKIP_WITHOUT_GPU();
  for (const NormCase& nc : kNormCases) {
    for (int64_t skip : {int64_t(0), int64_t(3)}) {
      SCOPED_TRACE(testing::Message() << "n " << nc.n << " c " << nc.c << " skip " << skip);
      const int64_t n = nc.n, c = nc.c;
      Tensor a = in({n, c}), r = in({n, c}), w = in({c}), b = in({c});
      // Reference: dropout, add, LayerNorm with the CPU ops; an odd Philox offset.
      Tensor d = Tensor::empty({n, c}, DType::kF32), h = Tensor::empty({n, c}, DType::kF32),
             y = Tensor::empty({n, c}, DType::kF32), mean = Tensor::empty({n}, DType::kF32),
             rstd = Tensor::empty({n}, DType::kF32);
      ops::dropout_forward(d, a, 0.1f, 5, 13);
      ops::add_forward(h, r, d);
      ops::norm_forward(ops::NormKind::kLayerNorm, y, mean, rstd, h, w, b, 1e-5f);
      Tensor gy = gpu_view(randn({n, c}), skip), gh = gpu_view(randn({n, c}), skip);
      Tensor gmean = Tensor::empty({n}, DType::kF32, kGpu), grstd = Tensor::empty({n}, DType::kF32, kGpu);
      ops::cuda::residual_norm_forward(ops::NormKind::kLayerNorm, gy, gh, gmean, grstd, gpu_view(a, skip),
                                       gpu_view(r, skip), to_gpu(w, dt()), to_gpu(b, dt()), 1e-5f, 0.1f, 5, 13,
                                       Stream::default_stream(kGpu));
      EXPECT_CLOSE(gh, h, tol());
      EXPECT_CLOSE(gy, y, tol());
      EXPECT_CLOSE(grstd, rstd, tol());
    }
  }
}

// The fused gated activations (one kernel per activation): I a multiple of
// 8 (16-byte chunks of y, gates and ups) and not (scalar), on aligned and
// offset views, backward accumulating and writing.
TEST_P(CudaVectorized, GatedBodyAndMisaligned) {
  SKIP_WITHOUT_GPU();
  for (ops::Activation f : {ops::Activation::kSilu, ops::Activation::kGeluTanh, ops::Activation::kGeluErf,
                            ops::Activation::kRelu, ops::Activation::kTanh}) {
    for (int64_t I : {int64_t(64), int64_t(37)}) {
      for (int64_t skip : {int64_t(0), int64_t(3)}) {
        SCOPED_TRACE(testing::Message() << "activation " << int(f) << " I " << I << " skip " << skip);
        const int64_t n = 9;
        Tensor x = in({n, 2 * I}), dy = in({n, I}), dx = in({n, 2 * I});
        Tensor gx = gpu_view(x, skip), gdy = gpu_view(dy, skip), gdx = gpu_view(dx, skip);
        Tensor y = Tensor::empty({n, I}, DType::kF32), gy = gpu_view(randn({n, I}), skip);
        ops::gated_forward(f, y, x);
        ops::gated_forward(f, gy, gx);
        EXPECT_CLOSE(gy, y, tol());
        ops::gated_backward(f, dx, dy, x);
        ops::gated_backward(f, gdx, gdy, gx);
        EXPECT_CLOSE(gdx, dx, tol());
        ops::gated_backward(f, dx, dy, x, ops::GradMode::kWrite);
        ops::gated_backward(f, gdx, gdy, gx, ops::GradMode::kWrite);
        EXPECT_CLOSE(gdx, dx, tol());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaVectorized, ::testing::Values(DType::kF32, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace ptune
