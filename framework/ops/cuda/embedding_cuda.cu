// Embedding lookups and cross-entropy on the GPU. Bad ids / targets are
// detected on the device and reported after one copy of a flag, so the
// error names the position as the CPU op does.
#include "framework/ops/cuda/common.cuh"
#include "framework/ops/cuda/kernels.h"

#include <algorithm>

namespace ptune::ops::cuda {

namespace {

constexpr int kThreads = 256;

// Lowers *bad to the first bad position i (INT64_MAX: none), with atomicMin.
__device__ __forceinline__ void flag_bad(int64_t* bad, int64_t i) {
  atomicMin(reinterpret_cast<unsigned long long*>(bad), static_cast<unsigned long long>(i));
}

// Each thread copies one (row, column); ids < 0 read prompt row −id−1
// (prompt may be null: then every id must be in [0, V)); table rows are
// multiplied by table_scale (1: exact).
template <class O, class E, bool kAdd>
__global__ void lookup_kernel(O* out, const int32_t* ids, const E* table, const E* prompt, int64_t n, int64_t c,
                              int64_t v, int64_t p, float table_scale, int64_t* bad) {
  const int64_t total = n * c;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / c, j = k % c;
    const int32_t id = ids[i];
    float x;
    if (id >= 0 && id < v) x = to_f(table[int64_t(id) * c + j]) * table_scale;
    else if (id < 0 && -int64_t(id) <= p) x = to_f(prompt[(-int64_t(id) - 1) * c + j]);
    else {
      if (j == 0) flag_bad(bad, i);
      continue;
    }
    if constexpr (kAdd) out[k] = from_f<O>(to_f(out[k]) + x);
    else out[k] = from_f<O>(x);
  }
}

// Scatter-add into f32 tables; only_prompt: ids ≥ 0 are frozen words.
template <class D>
__global__ void scatter_kernel(float* dtable, const D* dout, const int32_t* ids, int64_t n, int64_t c, bool prompt) {
  const int64_t total = n * c;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / c, j = k % c;
    const int32_t id = ids[i];
    if (prompt) {
      if (id < 0) atomicAdd(dtable + (-int64_t(id) - 1) * c + j, to_f(dout[k]));
    } else {
      atomicAdd(dtable + int64_t(id) * c + j, to_f(dout[k]));
    }
  }
}

// dst[rows[i]] += src[i], one (row, column) a thread; distinct rows, so
// plain read-modify-writes.
template <class T, class S>
__global__ void scatter_add_rows_kernel(T* dst, const S* src, const int32_t* rows, int64_t n, int64_t c, int64_t r,
                                        int64_t* bad) {
  const int64_t total = n * c;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < total; k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = k / c, j = k % c;
    const int32_t row = rows[i];
    if (row < 0 || row >= r) {
      if (j == 0) flag_bad(bad, i);
      continue;
    }
    T* d = dst + int64_t(row) * c + j;
    *d = from_f<T>(to_f(*d) + to_f(src[k]));
  }
}

// The flag flag_bad() lowers, set to "none" (INT64_MAX) before a launch.
int64_t* clear_bad(Scratch& flag, const Stream& stream) {
  const int64_t none = INT64_MAX;
  PTUNE_CUDA_CHECK(cudaMemcpyAsync(flag.tensor().raw(), &none, sizeof(none), cudaMemcpyHostToDevice, raw(stream)));
  return static_cast<int64_t*>(flag.tensor().raw());
}

void check_bad(const int64_t* bad_dev, const int32_t* ids_dev, const char* op, int64_t v, int64_t p,
               const Stream& stream) {
  int64_t bad = 0;
  PTUNE_CUDA_CHECK(cudaMemcpyAsync(&bad, bad_dev, sizeof(bad), cudaMemcpyDeviceToHost, raw(stream)));
  PTUNE_CUDA_CHECK(cudaStreamSynchronize(raw(stream)));
  if (bad == INT64_MAX) return;
  int32_t id = 0;
  PTUNE_CUDA_CHECK(cudaMemcpy(&id, ids_dev + bad, sizeof(id), cudaMemcpyDeviceToHost));
  if (p > 0) PTUNE_FAIL("{}: id {} at position {} is outside [-{}, {})", op, id, bad, p, v);
  PTUNE_FAIL("{}: id {} at position {} is outside the table of {} rows", op, id, bad, v);
}

template <bool kAdd>
void lookup(const char* op, const Tensor& out, const Tensor& ids, const Tensor& table, const Tensor& prompt,
            float table_scale, const Stream& stream) {
  check_cuda_tensor(table, "table", op);
  check_cuda_tensor(ids, "ids", op);
  PTUNE_CHECK(ids.dtype() == DType::kI32, "{}: ids must be i32", op);
  const int64_t n = ids.numel(), c = table.size(1), v = table.size(0), p = prompt.defined() ? prompt.size(0) : 0;
  PTUNE_CHECK(out.numel() == n * c, "{}: out {} for {} ids of width {}", op, out.shape().str(), n, c);
  if (prompt.defined())
    PTUNE_CHECK(prompt.size(1) == c && prompt.dtype() == table.dtype(), "{}: prompt {} for width {}", op,
                prompt.shape().str(), c);
  if (n == 0) return;
  Scratch bad(table.device(), {1}, DType::kI64);
  int64_t* pbad = clear_bad(bad, stream);
  PTUNE_FLOAT_DISPATCH(out.dtype(), O, op,
    PTUNE_FLOAT_DISPATCH(table.dtype(), E, op,
      lookup_kernel<O, E, kAdd><<<blocks_for(n * c, kThreads), kThreads, 0, raw(stream)>>>(
          static_cast<O*>(out.raw()), static_cast<const int32_t*>(ids.raw()), static_cast<const E*>(table.raw()),
          prompt.defined() ? static_cast<const E*>(prompt.raw()) : nullptr, n, c, v, p, table_scale, pbad)));
  PTUNE_CUDA_LAUNCH_CHECK();
  check_bad(pbad, static_cast<const int32_t*>(ids.raw()), op, v, p, stream);
}

void scatter(const char* op, const Tensor& dtable, const Tensor& dout, const Tensor& ids, bool prompt,
             const Stream& stream) {
  check_cuda_tensor(dtable, "gradient table", op);
  PTUNE_CHECK(dtable.dtype() == DType::kF32, "{}: gradient tables are f32 master copies", op);
  const int64_t n = ids.numel(), c = dtable.size(1);
  PTUNE_CHECK(dout.numel() == n * c, "{}: dout {} for {} ids of width {}", op, dout.shape().str(), n, c);
  if (n == 0) return;
  PTUNE_FLOAT_DISPATCH(dout.dtype(), D, op,
    scatter_kernel<D><<<blocks_for(n * c, kThreads), kThreads, 0, raw(stream)>>>(
        static_cast<float*>(dtable.raw()), static_cast<const D*>(dout.raw()), static_cast<const int32_t*>(ids.raw()),
        n, c, prompt));
  PTUNE_CUDA_LAUNCH_CHECK();
}

// One block per row: max, Σexp, lse and the loss, all f32.
template <class T>
__global__ void cross_entropy_forward_kernel(float* losses, float* lse, const T* logits, const int32_t* targets,
                                             int64_t v, unsigned long long* count, int64_t* bad) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const T* x = logits + row * v;
  const int32_t t = targets[row];
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) mx = fmaxf(mx, to_f(x[j]));
  mx = block_max(mx, shared);
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) s += expf(to_f(x[j]) - mx);
  s = block_sum(s, shared);
  if (threadIdx.x == 0) {
    const float l = mx + logf(s);
    lse[row] = l;
    const bool valid = t >= 0 && t < v;
    losses[row] = valid ? l - to_f(x[t]) : 0.0f;
    if (valid) atomicAdd(count, 1ull);
    else if (t != -100) flag_bad(bad, row);
  }
}

template <class T, class D>
__global__ void cross_entropy_backward_kernel(D* dlogits, const T* logits, const float* lse, const int32_t* targets,
                                              int64_t v, float scale) {
  const int64_t row = blockIdx.x;
  const int32_t t = targets[row];
  if (t < 0 || t >= v) return;
  const T* x = logits + row * v;
  D* d = dlogits + row * v;
  const float l = lse[row];
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    float g = scale * expf(to_f(x[j]) - l);
    if (j == t) g -= scale;
    d[j] = from_f<D>(to_f(d[j]) + g);
  }
}

}  // namespace

void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table, const Stream& stream) {
  lookup<false>("embedding", out, ids, table, Tensor(), 1.0f, stream);
}
void embedding_add(const Tensor& out, const Tensor& ids, const Tensor& table, const Stream& stream) {
  lookup<true>("embedding", out, ids, table, Tensor(), 1.0f, stream);
}
void prompt_embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table, const Tensor& prompt,
                              float table_scale, const Stream& stream) {
  PTUNE_CHECK(prompt.defined(), "prompt_embedding_forward: prompt is undefined");
  lookup<false>("prompt_embedding", out, ids, table, prompt, table_scale, stream);
}
void embedding_backward(const Tensor& dtable, const Tensor& dout, const Tensor& ids, const Stream& stream) {
  scatter("embedding_backward", dtable, dout, ids, false, stream);
}
void scatter_add_rows(const Tensor& dst, const Tensor& src, const Tensor& rows, const Stream& stream) {
  const char* op = "scatter_add_rows";
  check_cuda_tensor(dst, "dst", op);
  check_cuda_tensor(rows, "rows", op);
  PTUNE_CHECK(rows.dtype() == DType::kI32, "{}: rows must be i32", op);
  const int64_t n = rows.numel(), r = dst.size(0), c = dst.numel() / std::max<int64_t>(r, 1);
  PTUNE_CHECK(src.numel() == n * c, "{}: src {} for {} rows of width {}", op, src.shape().str(), n, c);
  if (n == 0) return;
  Scratch bad(dst.device(), {1}, DType::kI64);
  int64_t* pbad = clear_bad(bad, stream);
  PTUNE_FLOAT_DISPATCH(dst.dtype(), T, op,
    PTUNE_FLOAT_DISPATCH(src.dtype(), S, op,
      scatter_add_rows_kernel<T, S><<<blocks_for(n * c, kThreads), kThreads, 0, raw(stream)>>>(
          static_cast<T*>(dst.raw()), static_cast<const S*>(src.raw()), static_cast<const int32_t*>(rows.raw()), n, c,
          r, pbad)));
  PTUNE_CUDA_LAUNCH_CHECK();
  check_bad(pbad, static_cast<const int32_t*>(rows.raw()), op, r, 0, stream);
}
void prompt_embedding_backward(const Tensor& dprompt, const Tensor& dout, const Tensor& ids, const Stream& stream) {
  scatter("prompt_embedding_backward", dprompt, dout, ids, true, stream);
}

int64_t cross_entropy_forward(const Tensor& losses, const Tensor& lse, const Tensor& logits, const Tensor& targets,
                              const Stream& stream) {
  const char* op = "cross_entropy_forward";
  check_cuda_tensor(logits, "logits", op);
  const int64_t v = logits.size(-1), n = logits.numel() / v;
  PTUNE_CHECK(targets.numel() == n && losses.numel() == n && lse.numel() == n && targets.dtype() == DType::kI32 &&
                  losses.dtype() == DType::kF32 && lse.dtype() == DType::kF32,
              "{}: logits {} targets {}", op, logits.shape().str(), targets.shape().str());
  if (n == 0) return 0;
  Scratch flags(logits.device(), {2}, DType::kI64);  // [count, first bad row]
  const int64_t init[2] = {0, INT64_MAX};
  int64_t* pflags = static_cast<int64_t*>(flags.tensor().raw());
  PTUNE_CUDA_CHECK(cudaMemcpyAsync(pflags, init, sizeof(init), cudaMemcpyHostToDevice, raw(stream)));
  PTUNE_FLOAT_DISPATCH(logits.dtype(), T, op,
    cross_entropy_forward_kernel<T><<<unsigned(n), kThreads, 0, raw(stream)>>>(
        static_cast<float*>(losses.raw()), static_cast<float*>(lse.raw()), static_cast<const T*>(logits.raw()),
        static_cast<const int32_t*>(targets.raw()), v, reinterpret_cast<unsigned long long*>(pflags), pflags + 1));
  PTUNE_CUDA_LAUNCH_CHECK();
  int64_t result[2];
  PTUNE_CUDA_CHECK(cudaMemcpyAsync(result, pflags, sizeof(result), cudaMemcpyDeviceToHost, raw(stream)));
  PTUNE_CUDA_CHECK(cudaStreamSynchronize(raw(stream)));
  if (result[1] != INT64_MAX) {
    int32_t t = 0;
    PTUNE_CUDA_CHECK(cudaMemcpy(&t, static_cast<const int32_t*>(targets.raw()) + result[1], sizeof(t),
                                cudaMemcpyDeviceToHost));
    PTUNE_FAIL("cross_entropy: target {} at row {} outside [0, {})", t, result[1], v);
  }
  return result[0];
}

void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse, const Tensor& targets,
                            float scale, const Stream& stream) {
  const char* op = "cross_entropy_backward";
  check_cuda_tensor(logits, "logits", op);
  const int64_t v = logits.size(-1), n = logits.numel() / v;
  PTUNE_CHECK(dlogits.numel() == logits.numel(), "{}: dlogits {} logits {}", op, dlogits.shape().str(),
              logits.shape().str());
  if (n == 0) return;
  PTUNE_FLOAT_DISPATCH(logits.dtype(), T, op,
    PTUNE_FLOAT_DISPATCH(dlogits.dtype(), D, op,
      cross_entropy_backward_kernel<T, D><<<unsigned(n), kThreads, 0, raw(stream)>>>(
          static_cast<D*>(dlogits.raw()), static_cast<const T*>(logits.raw()), static_cast<const float*>(lse.raw()),
          static_cast<const int32_t*>(targets.raw()), v, scale)));
  PTUNE_CUDA_LAUNCH_CHECK();
}

}  // namespace ptune::ops::cuda
