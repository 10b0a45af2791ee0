// Linear layers through cuBLASLt. Row-major (N, in) · (out, in)ᵀ is the
// column-major product yᵀ = w·xᵀ with w seen as an (in, out) column-major
// matrix, transposed. f32 tensors use CUBLAS_COMPUTE_32F (no TF32: the f32
// mode must match the CPU to rounding); bf16 tensors run on the tensor
// cores with f32 accumulation. Bias and GELU ride in the epilogue; when
// cuBLASLt offers no algorithm for an epilogue, a small kernel applies it.
#include "framework/core/memory_cuda.h"
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::kF32: return CUDA_R_32F;
    case DType::kBF16: return CUDA_R_16BF;
    default: PTUNE_FAIL("linear: dtype {} is not supported on CUDA (f32 or bf16)", dtype_name(t));
  }
}

struct Operand {
  const void* data;
  DType dtype;
  int64_t rows, cols, ld;  // column-major storage
  bool trans;
};

// D (m, n) col-major = alpha · op(A) · op(B) + beta · D, with an epilogue.
// Returns false when cuBLASLt has no algorithm for that combination.
bool matmul(const Operand& a, const Operand& b, void* d, DType d_type, int64_t m, int64_t n, int64_t k, int64_t ldd,
            float beta, cublasLtEpilogue_t epilogue, const void* bias, DType bias_type, Device device,
            const Stream& stream) {
  auto lt = static_cast<cublasLtHandle_t>(ptune::cuda::cublaslt_handle(device.index));
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  bool ok = false;
  // Everything created here is destroyed on every path below.
  struct Cleanup {
    cublasLtMatmulDesc_t& desc;
    cublasLtMatrixLayout_t &la, &lb, &ld;
    cublasLtMatmulPreference_t& pref;
    ~Cleanup() {
      if (pref) cublasLtMatmulPreferenceDestroy(pref);
      if (ld) cublasLtMatrixLayoutDestroy(ld);
      if (lb) cublasLtMatrixLayoutDestroy(lb);
      if (la) cublasLtMatrixLayoutDestroy(la);
      if (desc) cublasLtMatmulDescDestroy(desc);
    }
  } cleanup{desc, la, lb, ld, pref};

  PTUNE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = a.trans ? CUBLAS_OP_T : CUBLAS_OP_N, tb = b.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
  if (bias != nullptr) {
    PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    const cudaDataType_t bt = cuda_type(bias_type);
    PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
  }
  PTUNE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, cuda_type(a.dtype), uint64_t(a.rows), uint64_t(a.cols), a.ld));
  PTUNE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, cuda_type(b.dtype), uint64_t(b.rows), uint64_t(b.cols), b.ld));
  PTUNE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ld, cuda_type(d_type), uint64_t(m), uint64_t(n), ldd));
  PTUNE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws_bytes = kWorkspaceBytes;
  PTUNE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                          sizeof(ws_bytes)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, &result, &found);
  if (hs != CUBLAS_STATUS_SUCCESS || found == 0) return false;
  Scratch workspace(device, {int64_t(ws_bytes / 4)}, DType::kI32);
  const float alpha = 1.0f;
  (void)k;
  PTUNE_CUBLAS_CHECK(cublasLtMatmul(lt, desc, &alpha, a.data, la, b.data, lb, &beta, d, ld, d, ld, &result.algo,
                                    workspace.tensor().raw(), ws_bytes, raw(stream)));
  ok = true;
  return ok;
}

template <class Y, class B>
__global__ void bias_act_kernel(Y* y, const B* bias, int64_t n, int64_t out, bool gelu) {
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n * out; k += int64_t(gridDim.x) * blockDim.x) {
    float v = to_f(y[k]) + (bias ? to_f(bias[k % out]) : 0.0f);
    if (gelu) v = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    y[k] = from_f<Y>(v);
  }
}

template <class D>
__global__ void bias_grad_kernel(float* dbias, const D* dy, int64_t n, int64_t out) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= out) return;
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += to_f(dy[i * out + j]);  // coalesced across j
  dbias[j] += s;
}

int64_t rows(const Tensor& t) { return t.numel() / t.size(-1); }

}  // namespace

void linear_forward_epilogue(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, Epilogue epilogue,
                             const Stream& stream) {
  const char* op = "linear_forward";
  check_cuda_tensor(x, "x", op);
  check_cuda_tensor(w, "w", op);
  const int64_t n = rows(x), in = x.size(-1), out = w.size(0);
  PTUNE_CHECK(w.size(1) == in && y.size(-1) == out && rows(y) == n, "{}: x {} w {} y {}", op, x.shape().str(),
              w.shape().str(), y.shape().str());
  PTUNE_CHECK(x.dtype() == w.dtype(), "{}: x is {} but w is {} (cast activations to the weight dtype)", op,
              dtype_name(x.dtype()), dtype_name(w.dtype()));
  const bool has_bias = epilogue == Epilogue::kBias || epilogue == Epilogue::kBiasGeluTanh;
  const bool gelu = epilogue == Epilogue::kGeluTanh || epilogue == Epilogue::kBiasGeluTanh;
  if (has_bias)
    PTUNE_CHECK(bias.defined() && bias.numel() == out, "{}: bias {} for {} outputs", op,
                bias.defined() ? bias.shape().str() : "undefined", out);
  if (n == 0) return;
  const Operand a{w.raw(), w.dtype(), in, out, in, true};
  const Operand b{x.raw(), x.dtype(), in, n, in, false};
  cublasLtEpilogue_t e = CUBLASLT_EPILOGUE_DEFAULT;
  if (has_bias && gelu) e = CUBLASLT_EPILOGUE_GELU_BIAS;
  else if (has_bias) e = CUBLASLT_EPILOGUE_BIAS;
  else if (gelu) e = CUBLASLT_EPILOGUE_GELU;
  if (matmul(a, b, y.raw(), y.dtype(), out, n, in, out, 0.0f, e, has_bias ? bias.raw() : nullptr,
             has_bias ? bias.dtype() : DType::kF32, x.device(), stream))
    return;
  // No fused algorithm: plain GEMM, then bias / GELU in one pass.
  PTUNE_CHECK(matmul(a, b, y.raw(), y.dtype(), out, n, in, out, 0.0f, CUBLASLT_EPILOGUE_DEFAULT, nullptr, DType::kF32,
                     x.device(), stream),
              "{}: cuBLASLt has no algorithm for x {} {} · w {}", op, x.shape().str(), dtype_name(x.dtype()),
              w.shape().str());
  if (!has_bias && !gelu) return;
  PTUNE_FLOAT_DISPATCH(y.dtype(), Y, op,
    PTUNE_FLOAT_DISPATCH(has_bias ? bias.dtype() : DType::kF32, B, op,
      bias_act_kernel<Y, B><<<blocks_for(n * out, 256), 256, 0, raw(stream)>>>(
          static_cast<Y*>(y.raw()), has_bias ? static_cast<const B*>(bias.raw()) : nullptr, n, out, gelu)));
  PTUNE_CUDA_LAUNCH_CHECK();
}

void linear_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Stream& stream) {
  linear_forward_epilogue(y, x, w, bias, bias.defined() ? Epilogue::kBias : Epilogue::kNone, stream);
}

void linear_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, const Stream& stream) {
  const char* op = "linear_backward_input";
  check_cuda_tensor(dy, "dy", op);
  const int64_t n = rows(dy), out = dy.size(-1), in = w.size(1);
  PTUNE_CHECK(w.size(0) == out && dx.size(-1) == in && rows(dx) == n, "{}: dy {} w {} dx {}", op, dy.shape().str(),
              w.shape().str(), dx.shape().str());
  PTUNE_CHECK(dy.dtype() == w.dtype(), "{}: dy is {} but w is {}", op, dtype_name(dy.dtype()), dtype_name(w.dtype()));
  if (n == 0) return;
  // dxᵀ (in, N) += w (in, out col-major) · dyᵀ (out, N)
  const Operand a{w.raw(), w.dtype(), in, out, in, false};
  const Operand b{dy.raw(), dy.dtype(), out, n, out, false};
  PTUNE_CHECK(matmul(a, b, dx.raw(), dx.dtype(), in, n, out, in, 1.0f, CUBLASLT_EPILOGUE_DEFAULT, nullptr,
                     DType::kF32, dy.device(), stream),
              "{}: cuBLASLt has no algorithm for dy {} · w {}", op, dy.shape().str(), w.shape().str());
}

void linear_backward_params(const Tensor& dw, const Tensor& dbias, const Tensor& dy, const Tensor& x,
                            const Stream& stream) {
  const char* op = "linear_backward_params";
  check_cuda_tensor(dy, "dy", op);
  const int64_t n = rows(dy), out = dy.size(-1), in = x.size(-1);
  PTUNE_CHECK(rows(x) == n && dw.size(0) == out && dw.size(1) == in, "{}: dy {} x {} dw {}", op, dy.shape().str(),
              x.shape().str(), dw.shape().str());
  PTUNE_CHECK(dy.dtype() == x.dtype(), "{}: dy is {} but x is {}", op, dtype_name(dy.dtype()), dtype_name(x.dtype()));
  if (dbias.defined()) PTUNE_CHECK(dbias.numel() == out && dbias.dtype() == DType::kF32,
                                   "{}: dbias must be ({}) f32", op, out);
  if (n == 0) return;
  // dwᵀ (in, out) += xᵀ (in, N) · dy (N, out)
  const Operand a{x.raw(), x.dtype(), in, n, in, false};
  const Operand b{dy.raw(), dy.dtype(), out, n, out, true};
  PTUNE_CHECK(matmul(a, b, dw.raw(), dw.dtype(), in, out, n, in, 1.0f, CUBLASLT_EPILOGUE_DEFAULT, nullptr,
                     DType::kF32, dy.device(), stream),
              "{}: cuBLASLt has no algorithm for dyᵀ {} · x {}", op, dy.shape().str(), x.shape().str());
  if (dbias.defined()) {
    PTUNE_FLOAT_DISPATCH(dy.dtype(), D, op,
      bias_grad_kernel<D><<<unsigned((out + 255) / 256), 256, 0, raw(stream)>>>(
          static_cast<float*>(dbias.raw()), static_cast<const D*>(dy.raw()), n, out));
    PTUNE_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace ptune::ops::cuda
