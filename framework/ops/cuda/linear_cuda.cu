// Linear layers through cuBLASLt. Row-major (N, in) · (out, in)ᵀ is the
// column-major product yᵀ = w·xᵀ with w seen as an (in, out) column-major
// matrix, transposed. f32 tensors use CUBLAS_COMPUTE_32F (no TF32: the f32
// mode must match the CPU to rounding); bf16 tensors run on the tensor
// cores with f32 accumulation. Bias and GELU ride in the epilogue; when
// cuBLASLt offers no algorithm for an epilogue, a small kernel applies it.
// In bf16 the MLP's GELU also rides in its GEMMs' epilogues: forward
// writes gelu(pre) and saves pre in an aux matrix (GELU_AUX_BIAS), backward
// multiplies dy · w by gelu'(pre) read back from it (DGELU).
//
// A training step repeats the same few GEMM shapes, so each shape's
// descriptors and heuristic choice are built once and cached per device
// (a plan), and every GEMM uses one persistent workspace per device. The
// steady state makes no descriptor or heuristic calls (only the bias
// pointer is set per call) and no allocations, and a CUDA graph may
// capture the GEMMs: the workspace address never changes.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "framework/core/memory_cuda.h"
#include "framework/ops/deterministic.h"
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

namespace ptune::ops::cuda {

namespace {

// Hopper's recommended cuBLASLt workspace; one per device, for the process.
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

// The largest power of two ≤ 256 dividing the address: cuBLASLt's heuristic
// assumes 256-byte aligned operands unless told otherwise, and a row view
// into a buffer may be less aligned than that.
uint32_t alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && a % al != 0) al >>= 1;
  return al;
}

// What rides in the epilogue besides alpha · op(A) · op(B) + beta · D: a
// bias vector (m) and an aux matrix (m, n) col-major in D's dtype with
// leading dimension aux_ld (the GELU input: written by GELU_AUX*, read by
// DGELU). Defaults: a plain GEMM.
struct EpilogueArgs {
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  DType bias_type = DType::kF32;
  const void* aux = nullptr;
  int64_t aux_ld = 0;
};

// Everything the descriptors and the heuristic's choice depend on; no
// pointer, only the pointers' alignment (bias and aux pointers are set per
// call).
struct PlanKey {
  DType a_type, b_type, d_type, bias_type;
  bool a_trans, b_trans, has_bias, beta_nonzero, has_aux;
  cublasLtEpilogue_t epilogue;
  int64_t a_rows, a_cols, lda, b_rows, b_cols, ldb, m, n, ldd, aux_ld;
  uint32_t a_align, b_align, d_align, bias_align, aux_align;
  bool operator==(const PlanKey&) const = default;
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    size_t h = 0;
    auto mix = [&h](uint64_t v) { h ^= std::hash<uint64_t>{}(v) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
    mix(uint64_t(k.a_type) | uint64_t(k.b_type) << 8 | uint64_t(k.d_type) << 16 | uint64_t(k.bias_type) << 24 |
        uint64_t(k.a_trans) << 32 | uint64_t(k.b_trans) << 33 | uint64_t(k.has_bias) << 34 |
        uint64_t(k.beta_nonzero) << 35 | uint64_t(k.has_aux) << 36 | uint64_t(k.epilogue) << 40);
    for (int64_t v : {k.a_rows, k.a_cols, k.lda, k.b_rows, k.b_cols, k.ldb, k.m, k.n, k.ldd, k.aux_ld})
      mix(uint64_t(v));
    mix(uint64_t(k.a_align) | uint64_t(k.b_align) << 16 | uint64_t(k.d_align) << 32 | uint64_t(k.bias_align) << 48);
    mix(uint64_t(k.aux_align));
    return h;
  }
};

struct DescDeleter {
  void operator()(cublasLtMatmulDesc_t d) const { cublasLtMatmulDescDestroy(d); }
};
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayout_t l) const { cublasLtMatrixLayoutDestroy(l); }
};
struct PreferenceDeleter {
  void operator()(cublasLtMatmulPreference_t p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using DescPtr = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulDesc_t>, DescDeleter>;
using LayoutPtr = std::unique_ptr<std::remove_pointer_t<cublasLtMatrixLayout_t>, LayoutDeleter>;
using PreferencePtr = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, PreferenceDeleter>;

LayoutPtr make_layout(DType dtype, int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  PTUNE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, cuda_type(dtype), uint64_t(rows), uint64_t(cols), ld));
  return LayoutPtr(l);
}

void set_pref(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, uint32_t value) {
  PTUNE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)));
}

// Algorithms asked of the heuristic per shape: the first is its best
// guess; tune() times them all.
constexpr int kHeuristicAlgos = 8;

// One GEMM shape's descriptors and the heuristic's algorithms, created once;
// found = false caches "cuBLASLt has no algorithm" (the caller falls back).
struct Plan {
  DescPtr desc;
  LayoutPtr a, b, d;  // C is D (in place, beta scales D)
  cublasLtMatmulAlgo_t algo{};                // the heuristic's first choice
  // All it offered, first choice first (an array: nvcc's front end cannot
  // destroy a std::vector of this anonymous struct).
  cublasLtMatmulAlgo_t options[kHeuristicAlgos] = {};
  int option_count = 0;
  cublasLtMatmulAlgo_t tuned{};               // the fastest option, once timed
  bool timed = false;
  bool found = false;

  // aux: this call's aux pointer; the heuristic reads its alignment from
  // the descriptor (cublasLt.h, EPILOGUE_AUX_POINTER), the key records it.
  Plan(const PlanKey& key, const void* aux, cublasLtHandle_t lt) {
    cublasLtMatmulDesc_t raw_desc = nullptr;
    PTUNE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&raw_desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    desc.reset(raw_desc);
    const cublasOperation_t ta = key.a_trans ? CUBLAS_OP_T : CUBLAS_OP_N, tb = key.b_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    PTUNE_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &key.epilogue, sizeof(key.epilogue)));
    if (key.has_bias) {
      const cudaDataType_t bt = cuda_type(key.bias_type);
      PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
    }
    if (key.has_aux) {  // aux dtype left at its default: D's
      PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &key.aux_ld,
                                                        sizeof(key.aux_ld)));
      PTUNE_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
    }
    a = make_layout(key.a_type, key.a_rows, key.a_cols, key.lda);
    b = make_layout(key.b_type, key.b_rows, key.b_cols, key.ldb);
    d = make_layout(key.d_type, key.m, key.n, key.ldd);
    cublasLtMatmulPreference_t raw_pref = nullptr;
    PTUNE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&raw_pref));
    PreferencePtr pref(raw_pref);
    const size_t ws_bytes = kWorkspaceBytes;
    PTUNE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(raw_pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                            &ws_bytes, sizeof(ws_bytes)));
    set_pref(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.a_align);
    set_pref(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.b_align);
    set_pref(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.d_align);
    set_pref(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.d_align);
    cublasLtMatmulHeuristicResult_t results[kHeuristicAlgos] = {};
    int count = 0;
    const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt, raw_desc, a.get(), b.get(), d.get(), d.get(),
                                                              raw_pref, kHeuristicAlgos, results, &count);
    found = hs == CUBLAS_STATUS_SUCCESS && count > 0;
    if (!found) return;
    algo = results[0].algo;
    for (int i = 0; i < count; ++i)
      if (results[i].state == CUBLAS_STATUS_SUCCESS) options[option_count++] = results[i].algo;
  }
};

// Epilogues that write the aux matrix (the others read it, or have none).
bool writes_aux(cublasLtEpilogue_t e) {
  return e == CUBLASLT_EPILOGUE_GELU_AUX || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS || e == CUBLASLT_EPILOGUE_RELU_AUX ||
         e == CUBLASLT_EPILOGUE_RELU_AUX_BIAS;
}

// Autotuning, once per plan (PTUNE_DETERMINISTIC keeps the heuristic's
// first choice instead: ops/deterministic.h). cuBLASLt's heuristic ranks
// algorithms by a model, and its first choice is not always the fastest on
// the GPU at hand, so each option is timed once on this call's operands
// (warm-up, then 3 runs between events) and the fastest kept for the plan. The timing runs write a scratch D (and aux, where the epilogue
// writes it), so the call's own outputs are untouched; the caller then
// runs the real GEMM. Not while a graph is being captured (timing syncs).
// Measured on an H100 (P-Tuning v2 step, batch 8 × 512): the 1B LLaMA
// shape's GEMMs 22.13 → 21.37 ms, GPT-2-medium's unchanged within noise.
void tune(Plan& plan, cublasLtHandle_t lt, const void* a, const void* b, DType d_type, int64_t n, int64_t ldd,
          float beta, const void* aux, int64_t aux_ld, cublasLtEpilogue_t epilogue, void* workspace,
          size_t workspace_bytes, int device, cudaStream_t stream) {
  const size_t d_bytes = size_t(ldd * n) * dtype_size(d_type);
  const size_t aux_bytes = aux != nullptr && writes_aux(epilogue) ? size_t(aux_ld * n) * dtype_size(d_type) : 0;
  void* scratch = ptune::cuda::allocate(device, d_bytes + aux_bytes + 256);
  void* scratch_aux = static_cast<char*>(scratch) + (d_bytes + 255) / 256 * 256;
  // The descriptor may still hold an earlier call's aux: point it at this
  // call's (read by DGELU) or at scratch (written by GELU_AUX).
  const void* timing_aux = aux_bytes > 0 ? scratch_aux : aux;
  if (aux != nullptr)
    PTUNE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER,
                                                      &timing_aux, sizeof(timing_aux)));
  cudaEvent_t start = nullptr, stop = nullptr;
  PTUNE_CUDA_CHECK(cudaEventCreate(&start));
  PTUNE_CUDA_CHECK(cudaEventCreate(&stop));
  const float alpha = 1.0f;
  auto run = [&](const cublasLtMatmulAlgo_t& algo) {
    return cublasLtMatmul(lt, plan.desc.get(), &alpha, a, plan.a.get(), b, plan.b.get(), &beta, scratch,
                          plan.d.get(), scratch, plan.d.get(), &algo, workspace, workspace_bytes, stream);
  };
  float best = 0.0f;
  for (int i = 0; i < plan.option_count; ++i) {
    const cublasLtMatmulAlgo_t& algo = plan.options[i];
    if (run(algo) != CUBLAS_STATUS_SUCCESS) continue;  // turned down at launch: not an option
    PTUNE_CUDA_CHECK(cudaEventRecord(start, stream));
    bool ran = true;
    for (int rep = 0; rep < 3; ++rep) ran = ran && run(algo) == CUBLAS_STATUS_SUCCESS;
    PTUNE_CUDA_CHECK(cudaEventRecord(stop, stream));
    if (!ran) continue;
    PTUNE_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    PTUNE_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (!plan.timed || ms < best) {
      plan.tuned = algo;
      plan.timed = true;
      best = ms;
    }
  }
  PTUNE_CUDA_CHECK(cudaEventDestroy(start));
  PTUNE_CUDA_CHECK(cudaEventDestroy(stop));
  ptune::cuda::free(device, scratch);  // stream-ordered after the timing runs: synchronised above
  if (!plan.timed) plan.tuned = plan.algo, plan.timed = true;
}

bool capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  PTUNE_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

// The plans and the workspace of one device. The mutex is held from the
// lookup through the launch: the bias and aux pointers are written into the shared
// descriptor, and the workspace is shared by every GEMM on the device, so
// GEMMs must be stream-ordered with each other (one compute stream per
// device, the caching allocator's rule too — core/memory_cuda.h).
struct DevicePlans {
  std::mutex mutex;
  std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash> plans;
  void* workspace = nullptr;  // kWorkspaceBytes, never freed
};

struct PlanCache {
  std::mutex mutex;                                   // guards `devices` only
  std::vector<std::unique_ptr<DevicePlans>> devices;  // by device index; entries never move

  DevicePlans& at(int index) {
    std::lock_guard<std::mutex> lock(mutex);
    PTUNE_CHECK(index >= 0 && index < 64, "linear: cuda device index {} out of range", index);
    if (size_t(index) >= devices.size()) devices.resize(size_t(index) + 1);
    if (!devices[size_t(index)]) devices[size_t(index)] = std::make_unique<DevicePlans>();
    return *devices[size_t(index)];
  }
};

// Process-wide, like the allocator and the cuBLASLt handles it builds on
// (core/memory_cuda.cu): a plan must outlive any one model or step. Leaked
// on purpose, so no cuBLASLt object is destroyed after the driver shuts down.
PlanCache& plan_cache() {
  static PlanCache* cache = new PlanCache();
  return *cache;
}

// D (m, n) col-major = epilogue(alpha · op(A) · op(B) + beta · D).
// Returns false when cuBLASLt has no algorithm for that combination.
bool matmul(const Operand& a, const Operand& b, void* d, DType d_type, int64_t m, int64_t n, int64_t ldd, float beta,
            const EpilogueArgs& ep, Device device, const Stream& stream) {
  const cublasLtEpilogue_t epilogue = ep.epilogue;
  const void* bias = ep.bias;
  const void* aux = ep.aux;
  const bool has_bias = bias != nullptr, has_aux = aux != nullptr;
  const PlanKey key{a.dtype, b.dtype, d_type, has_bias ? ep.bias_type : DType::kF32,
                    a.trans, b.trans, has_bias, beta != 0.0f, has_aux,
                    epilogue, a.rows, a.cols, a.ld, b.rows, b.cols, b.ld, m, n, ldd, has_aux ? ep.aux_ld : 0,
                    alignment(a.data), alignment(b.data), alignment(d), has_bias ? alignment(bias) : 0u,
                    has_aux ? alignment(aux) : 0u};
  auto lt = static_cast<cublasLtHandle_t>(ptune::cuda::cublaslt_handle(device.index));
  DevicePlans& dev = plan_cache().at(device.index);
  std::lock_guard<std::mutex> lock(dev.mutex);
  auto it = dev.plans.find(key);
  if (it == dev.plans.end()) it = dev.plans.emplace(key, std::make_unique<Plan>(key, aux, lt)).first;
  Plan& plan = *it->second;
  if (!plan.found) return false;
  if (dev.workspace == nullptr) dev.workspace = ptune::cuda::allocate(device.index, kWorkspaceBytes);
  if (has_bias)
    PTUNE_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  const bool autotune = !deterministic();
  if (autotune && !plan.timed && plan.option_count > 1 && !capturing(raw(stream)))
    tune(plan, lt, a.data, b.data, d_type, n, ldd, beta, aux, has_aux ? ep.aux_ld : 0, epilogue, dev.workspace,
         kWorkspaceBytes, device.index, raw(stream));
  const cublasLtMatmulAlgo_t& algo = autotune && plan.timed ? plan.tuned : plan.algo;
  if (has_aux)
    PTUNE_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)));
  const float alpha = 1.0f;
  const cublasStatus_t status = cublasLtMatmul(lt, plan.desc.get(), &alpha, a.data, plan.a.get(), b.data,
                                               plan.b.get(), &beta, d, plan.d.get(), d, plan.d.get(), &algo,
                                               dev.workspace, kWorkspaceBytes, raw(stream));
  // A fused epilogue the chosen algorithm turns down at launch (a bias the
  // heuristic could not see; an aux layout it rejects, which cuBLASLt
  // reports as an invalid value): remember it and let the caller apply the
  // epilogue itself.
  const bool turned_down =
      status == CUBLAS_STATUS_NOT_SUPPORTED || (has_aux && status == CUBLAS_STATUS_INVALID_VALUE);
  if (turned_down && epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
    plan.found = false;
    return false;
  }
  PTUNE_CHECK(status == CUBLAS_STATUS_SUCCESS,
              "cuBLASLt matmul ({} x {} from {} {}x{} ld {} and {} {}x{} ld {}, epilogue {}): {}", m, n,
              dtype_name(a.dtype), a.rows, a.cols, a.ld, dtype_name(b.dtype), b.rows, b.cols, b.ld, int(epilogue),
              cublasGetStatusString(status));
  return true;
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

// yᵀ (out, N) = w (in, out col-major)ᵀ · xᵀ (in, N): linear_forward's A, B.
struct Operands {
  Operand a, b;
};
Operands forward_operands(const Tensor& x, const Tensor& w) {
  const int64_t n = rows(x), in = x.size(-1), out = w.size(0);
  return {{w.raw(), w.dtype(), in, out, in, true}, {x.raw(), x.dtype(), in, n, in, false}};
}
// dxᵀ (in, N) = w (in, out col-major) · dyᵀ (out, N): linear_backward_input's A, B.
Operands backward_input_operands(const Tensor& dy, const Tensor& w) {
  const int64_t n = rows(dy), out = dy.size(-1), in = w.size(1);
  return {{w.raw(), w.dtype(), in, out, in, false}, {dy.raw(), dy.dtype(), out, n, out, false}};
}

// Whether the MLP's GELU rides in the epilogue, with `pre` (N, ld) as the
// aux matrix next to the GEMM output d. bf16 only: cuBLASLt's GELU uses its
// own tanh, ~1e-5 off per element, and the f32 mode must match the CPU to
// rounding, so f32 keeps the unfused kernels. cuBLASLt wants the aux
// leading dimension a multiple of 8 (cublasLt.h, EPILOGUE_AUX_LD) and its
// type D's; 16-byte alignment keeps vector stores.
bool gelu_aux_fits(Activation f, const Tensor& pre, const Tensor& d) {
  return f == Activation::kGeluTanh && pre.dtype() == DType::kBF16 && d.dtype() == DType::kBF16 &&
         pre.size(-1) % 8 == 0 && alignment(pre.raw()) >= 16;
}

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
  const auto [a, b] = forward_operands(x, w);
  cublasLtEpilogue_t e = CUBLASLT_EPILOGUE_DEFAULT;
  if (has_bias && gelu) e = CUBLASLT_EPILOGUE_GELU_BIAS;
  else if (has_bias) e = CUBLASLT_EPILOGUE_BIAS;
  else if (gelu) e = CUBLASLT_EPILOGUE_GELU;
  if (matmul(a, b, y.raw(), y.dtype(), out, n, out, 0.0f,
             {e, has_bias ? bias.raw() : nullptr, has_bias ? bias.dtype() : DType::kF32}, x.device(), stream))
    return;
  // No fused algorithm: plain GEMM, then bias / GELU in one pass.
  PTUNE_CHECK(matmul(a, b, y.raw(), y.dtype(), out, n, out, 0.0f, {}, x.device(), stream),
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

void linear_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, GradMode mode,
                           const Stream& stream) {
  const char* op = "linear_backward_input";
  check_cuda_tensor(dy, "dy", op);
  const int64_t n = rows(dy), out = dy.size(-1), in = w.size(1);
  PTUNE_CHECK(w.size(0) == out && dx.size(-1) == in && rows(dx) == n, "{}: dy {} w {} dx {}", op, dy.shape().str(),
              w.shape().str(), dx.shape().str());
  PTUNE_CHECK(dy.dtype() == w.dtype(), "{}: dy is {} but w is {}", op, dtype_name(dy.dtype()), dtype_name(w.dtype()));
  if (n == 0) return;
  // dxᵀ (in, N) += w · dyᵀ; kWrite: beta 0, so cuBLASLt never reads dx
  // (which may hold garbage) and picks its plan under a beta-0 key.
  const auto [a, b] = backward_input_operands(dy, w);
  const float beta = mode == GradMode::kWrite ? 0.0f : 1.0f;
  PTUNE_CHECK(matmul(a, b, dx.raw(), dx.dtype(), in, n, in, beta, {}, dy.device(), stream),
              "{}: cuBLASLt has no algorithm for dy {} · w {}", op, dy.shape().str(), w.shape().str());
}

void linear_activation_forward(Activation f, const Tensor& act, const Tensor& pre, const Tensor& x, const Tensor& w,
                               const Tensor& bias, const Stream& stream) {
  const char* op = "linear_activation_forward";
  check_cuda_tensor(x, "x", op);
  check_cuda_tensor(w, "w", op);
  check_cuda_tensor(pre, "pre", op);
  check_cuda_tensor(act, "act", op);
  const int64_t n = rows(x), in = x.size(-1), out = w.size(0);
  PTUNE_CHECK(w.size(1) == in && pre.size(-1) == out && rows(pre) == n && act.numel() == pre.numel(),
              "{}: x {} w {} pre {} act {}", op, x.shape().str(), w.shape().str(), pre.shape().str(),
              act.shape().str());
  PTUNE_CHECK(x.dtype() == w.dtype(), "{}: x is {} but w is {} (cast activations to the weight dtype)", op,
              dtype_name(x.dtype()), dtype_name(w.dtype()));
  const bool has_bias = bias.defined();
  if (has_bias) PTUNE_CHECK(bias.numel() == out, "{}: bias {} for {} outputs", op, bias.shape().str(), out);
  if (n == 0) return;
  if (gelu_aux_fits(f, pre, act)) {
    // actᵀ (out, N) = gelu(w · xᵀ + bias); preᵀ, the GELU input, in the aux buffer.
    const auto [a, b] = forward_operands(x, w);
    const EpilogueArgs ep{has_bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX,
                          has_bias ? bias.raw() : nullptr, has_bias ? bias.dtype() : DType::kF32, pre.raw(), out};
    if (matmul(a, b, act.raw(), act.dtype(), out, n, out, 0.0f, ep, x.device(), stream)) return;
  }
  linear_forward(pre, x, w, bias, stream);
  activation_forward(f, act, pre, stream);
}

void linear_activation_backward_input(Activation f, const Tensor& dpre, const Tensor& dact, const Tensor& dy,
                                      const Tensor& w, const Tensor& pre, const Stream& stream) {
  const char* op = "linear_activation_backward_input";
  check_cuda_tensor(dy, "dy", op);
  check_cuda_tensor(w, "w", op);
  check_cuda_tensor(pre, "pre", op);
  check_cuda_tensor(dpre, "dpre", op);
  check_cuda_tensor(dact, "dact", op);
  const int64_t n = rows(dy), out = dy.size(-1), in = w.size(1);
  PTUNE_CHECK(w.size(0) == out && dpre.size(-1) == in && rows(dpre) == n && dact.numel() == dpre.numel() &&
                  pre.numel() == dpre.numel(),
              "{}: dy {} w {} dpre {} dact {} pre {}", op, dy.shape().str(), w.shape().str(), dpre.shape().str(),
              dact.shape().str(), pre.shape().str());
  PTUNE_CHECK(dy.dtype() == w.dtype(), "{}: dy is {} but w is {}", op, dtype_name(dy.dtype()), dtype_name(w.dtype()));
  if (n == 0) return;
  const auto [a, b] = backward_input_operands(dy, w);
  // dpreᵀ (in, N) = gelu'(preᵀ) ⊙ (w · dyᵀ): beta 0, since the epilogue
  // would scale an accumulated D by gelu' too.
  if (gelu_aux_fits(f, pre, dpre) &&
      matmul(a, b, dpre.raw(), dpre.dtype(), in, n, in, 0.0f, {CUBLASLT_EPILOGUE_DGELU, nullptr, DType::kF32,
                                                               pre.raw(), in},
             dy.device(), stream))
    return;
  // Unfused: dact = dy · w (beta 0: dact need not be zeroed), dpre = 0 + dact ⊙ f'(pre).
  PTUNE_CHECK(matmul(a, b, dact.raw(), dact.dtype(), in, n, in, 0.0f, {}, dy.device(), stream),
              "{}: cuBLASLt has no algorithm for dy {} · w {}", op, dy.shape().str(), w.shape().str());
  PTUNE_CUDA_CHECK(cudaMemsetAsync(dpre.raw(), 0, dpre.nbytes(), raw(stream)));
  activation_backward(f, dpre, dact, pre, stream);
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
  PTUNE_CHECK(matmul(a, b, dw.raw(), dw.dtype(), in, out, in, 1.0f, {}, dy.device(), stream),
              "{}: cuBLASLt has no algorithm for dyᵀ {} · x {}", op, dy.shape().str(), x.shape().str());
  if (dbias.defined()) {
    PTUNE_FLOAT_DISPATCH(dy.dtype(), D, op,
      bias_grad_kernel<D><<<unsigned((out + 255) / 256), 256, 0, raw(stream)>>>(
          static_cast<float*>(dbias.raw()), static_cast<const D*>(dy.raw()), n, out));
    PTUNE_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace ptune::ops::cuda
