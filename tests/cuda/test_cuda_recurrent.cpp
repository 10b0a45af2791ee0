// P-Tuning's bi-LSTM on a GPU against the CPU reference: the cell ops of
// ops/recurrent.h on random inputs, then a whole Lstm forward + backward
// (output, dx and every parameter gradient). f32 only (the encoder's
// parameters and activations are f32 master copies): ≤ 1e-5 relative, the
// GPU only reorders the GEMMs' sums and rounds expf / tanhf differently.
// Every test skips when no GPU is visible.
#include <gtest/gtest.h>

#include <vector>

#include "framework/core/arena.h"
#include "framework/core/parameters.h"
#include "framework/core/rng.h"
#include "framework/ops/recurrent.h"
#include "framework/peft/lstm.h"
#include "cuda/cuda_test_util.h"

namespace ptune {
namespace {

using namespace cuda_test;  // NOLINT: the shared helpers

Tensor gpu(const Tensor& t) { return t.defined() ? t.to(kGpu) : Tensor(); }

// Both optional operands present (a middle step) and absent (the first
// step; for backward also the last step's missing dh_rec), with several
// rows and an odd H.
TEST(CudaRecurrent, LstmCellMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const bool first : {false, true}) {
    SCOPED_TRACE(first ? "first step" : "middle step");
    const int64_t N = 3, H = 37;
    const Tensor gx = randn({N, 4 * H}), b_hh = randn({4 * H}, 0.5f);
    const Tensor rec = first ? Tensor() : randn({N, 4 * H}), c_prev = first ? Tensor() : randn({N, H});
    // Outputs start random: forward must overwrite every element.
    Tensor acts = randn({N, 4 * H}), c = randn({N, H}), h = randn({N, H});
    Tensor gacts = gpu(acts), gc = gpu(c), gh = gpu(h);
    ops::lstm_cell_forward(acts, c, h, gx, rec, b_hh, c_prev);
    ops::lstm_cell_forward(gacts, gc, gh, gpu(gx), gpu(rec), gpu(b_hh), gpu(c_prev));
    EXPECT_CLOSE(gacts, acts, kF32Tol);
    EXPECT_CLOSE(gc, c, kF32Tol);
    EXPECT_CLOSE(gh, h, kF32Tol);

    const Tensor dh_out = randn({N, H}), dh_rec = first ? Tensor() : randn({N, H});
    Tensor dgates = randn({N, 4 * H}), dc = randn({N, H});  // dgates is overwritten, dc carried
    Tensor gdgates = gpu(dgates), gdc = gpu(dc);
    ops::lstm_cell_backward(dgates, dc, dh_out, dh_rec, acts, c, c_prev);
    ops::lstm_cell_backward(gdgates, gdc, gpu(dh_out), gpu(dh_rec), gacts, gc, gpu(c_prev));
    EXPECT_CLOSE(gdgates, dgates, kF32Tol);
    EXPECT_CLOSE(gdc, dc, kF32Tol);
  }
}

TEST(CudaRecurrent, LstmCellRejectsMixedDevices) {
  SKIP_WITHOUT_GPU();
  const int64_t N = 1, H = 8;
  const Tensor acts = Tensor::empty({N, 4 * H}, DType::kF32, kGpu), c = Tensor::empty({N, H}, DType::kF32, kGpu),
               h = Tensor::empty({N, H}, DType::kF32, kGpu), gx = randn({N, 4 * H}).to(kGpu),
               b_hh = randn({4 * H}).to(kGpu);
  EXPECT_THROW(ops::lstm_cell_forward(acts, c, h, gx, Tensor(), b_hh, randn({N, H})), Error);  // c_prev on the CPU
  EXPECT_THROW(ops::lstm_cell_forward(acts, c, h, gx, Tensor(), randn({4 * H}), Tensor()), Error);
}

struct LstmCase {
  int64_t seq, input, hidden, layers;
  float dropout;
};

// One Lstm per device from the same initialisation, the same input, output
// gradient and nonzero starting gradients (backward accumulates).
TEST(CudaRecurrent, LstmForwardBackwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (const LstmCase& k : {LstmCase{7, 10, 24, 2, 0.3f}, LstmCase{1, 5, 37, 1, 0.0f},
                            LstmCase{12, 16, 33, 3, 0.0f}}) {
    SCOPED_TRACE(testing::Message() << "T " << k.seq << " In " << k.input << " H " << k.hidden << " layers "
                                    << k.layers << " p " << k.dropout);
    ParameterSet cpu_set, gpu_set;
    peft::Lstm cpu_lstm(cpu_set, "lstm.", k.input, k.hidden, k.layers);
    peft::Lstm gpu_lstm(gpu_set, "lstm.", k.input, k.hidden, k.layers);
    cpu_set.finalize();
    gpu_set.finalize();
    Rng rng(11);
    cpu_lstm.init(rng);
    Tensor(gpu_set.values()).copy_from(cpu_set.values());
    Tensor(cpu_set.grads()).copy_from(randn({cpu_set.numel()}));
    Tensor(gpu_set.grads()).copy_from(cpu_set.grads());
    gpu_set.to(kGpu);

    const int64_t T = k.seq, H = k.hidden;
    const Tensor x = randn({T, k.input}), dy = randn({T, 2 * H});
    Arena cpu_arena, gpu_arena(kGpu);
    Tensor y = Tensor::empty({T, 2 * H}, DType::kF32), gy = Tensor::empty({T, 2 * H}, DType::kF32, kGpu);
    cpu_lstm.forward(y, x, cpu_arena, k.dropout, 5, 100);
    gpu_lstm.forward(gy, gpu(x), gpu_arena, k.dropout, 5, 100);
    EXPECT_CLOSE(gy, y, kF32Tol);

    Tensor dx = randn({T, k.input}), gdx = gpu(dx);
    cpu_lstm.backward(dx, dy, cpu_arena);
    gpu_lstm.backward(gdx, gpu(dy), gpu_arena);
    EXPECT_CLOSE(gdx, dx, kF32Tol);
    for (size_t i = 0; i < cpu_set.entries().size(); ++i)
      EXPECT_CLOSE(gpu_set.grad(i), cpu_set.grad(i), kF32Tol) << cpu_set.entries()[i].name;
  }
}

}  // namespace
}  // namespace ptune
