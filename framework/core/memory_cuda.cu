// CUDA memory, streams, events, graphs and the cuBLASLt handle.
//
// The caching allocator and the cuBLASLt handles are the one deliberate
// piece of process-wide state in ptune: device_allocate() is a free
// function (Tensor::empty calls it), and a cache that lived in any one
// object would not be found by the next. It is a single Registry object,
// guarded by a mutex, like the CUDA runtime's own per-device context.
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "framework/core/cuda_check.h"
#include "framework/core/memory_cuda.h"

namespace ptune::cuda {

namespace {

constexpr size_t kSmall = size_t(1) << 20;        // below: 512-byte granules
constexpr size_t kLargeGranule = size_t(2) << 20;  // above: 2 MiB granules

size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes < kSmall) return (bytes + 511) / 512 * 512;
  return (bytes + kLargeGranule - 1) / kLargeGranule * kLargeGranule;
}

struct DeviceCache {
  std::multimap<size_t, void*> free_blocks;  // size -> block, best fit by lower_bound
  std::unordered_map<void*, size_t> in_use;
  AllocatorStats stats;
  cublasLtHandle_t lt = nullptr;
};

struct Registry {
  std::mutex mutex;
  std::vector<DeviceCache> devices;

  DeviceCache& at(int index) {
    PTUNE_CHECK(index >= 0 && index < 64, "cuda device index {} out of range", index);
    if (size_t(index) >= devices.size()) devices.resize(size_t(index) + 1);
    return devices[size_t(index)];
  }
};

Registry& registry() {
  // Intentionally leaked: blocks may be freed by tensors destroyed after
  // main returns, when a destroyed registry would be touched.
  static Registry* r = new Registry();
  return *r;
}

void release_cached(int device_index, DeviceCache& cache) {
  cudaSetDevice(device_index);
  for (auto& [size, ptr] : cache.free_blocks) {
    cudaFree(ptr);
    cache.stats.cached_bytes -= size;
  }
  cache.free_blocks.clear();
}

}  // namespace

void* allocate(int device_index, size_t bytes) {
  const size_t size = round_size(bytes);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  DeviceCache& cache = r.at(device_index);
  // Best fit, but never hand a small request a block more than twice its size.
  auto it = cache.free_blocks.lower_bound(size);
  if (it != cache.free_blocks.end() && it->first <= 2 * size) {
    void* p = it->second;
    const size_t got = it->first;
    cache.free_blocks.erase(it);
    cache.stats.cached_bytes -= got;
    cache.stats.in_use_bytes += got;
    cache.in_use[p] = got;
    return p;
  }
  PTUNE_CUDA_CHECK(cudaSetDevice(device_index));
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, size);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear it, give the cache back, try once more
    release_cached(device_index, cache);
    status = cudaMalloc(&p, size);
  }
  PTUNE_CHECK(status == cudaSuccess, "cudaMalloc of {} bytes on cuda:{} failed: {}", size, device_index,
              cudaGetErrorString(status));
  ++cache.stats.system_allocations;
  cache.stats.in_use_bytes += size;
  cache.in_use[p] = size;
  return p;
}

void free(int device_index, void* ptr) {
  if (ptr == nullptr) return;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  DeviceCache& cache = r.at(device_index);
  auto it = cache.in_use.find(ptr);
  if (it == cache.in_use.end()) {  // not ours; never throw from a destructor path
    cudaSetDevice(device_index);
    cudaFree(ptr);
    return;
  }
  cache.stats.in_use_bytes -= it->second;
  cache.stats.cached_bytes += it->second;
  cache.free_blocks.emplace(it->second, ptr);
  cache.in_use.erase(it);
}

AllocatorStats allocator_stats(int device_index) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.at(device_index).stats;
}

void empty_cache(int device_index) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  release_cached(device_index, r.at(device_index));
}

void copy(void* dst, const void* src, size_t bytes) {
  PTUNE_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

void memset_zero(void* ptr, size_t bytes) { PTUNE_CUDA_CHECK(cudaMemset(ptr, 0, bytes)); }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

void* stream_create(int device_index, int priority) {
  PTUNE_CUDA_CHECK(cudaSetDevice(device_index));
  cudaStream_t s = nullptr;
  PTUNE_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority));
  return s;
}

void stream_destroy(void* stream) {
  if (stream != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(stream));
}

void stream_synchronize(void* stream) { PTUNE_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream))); }

void* event_create(int device_index, bool timing) {
  PTUNE_CUDA_CHECK(cudaSetDevice(device_index));
  cudaEvent_t e = nullptr;
  PTUNE_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return e;
}

void event_destroy(void* event) {
  if (event != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

void event_record(void* event, void* stream) {
  PTUNE_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)));
}

void stream_wait_event(void* stream, void* event) {
  PTUNE_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0));
}

void event_synchronize(void* event) { PTUNE_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event))); }

bool event_query(void* event) {
  const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(event));
  if (status == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  PTUNE_CUDA_CHECK(status);
  return true;
}

float event_elapsed_ms(void* start, void* end) {
  float ms = 0.0f;
  PTUNE_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
  return ms;
}

void* graph_capture_begin(void* stream) {
  PTUNE_CUDA_CHECK(cudaStreamBeginCapture(static_cast<cudaStream_t>(stream), cudaStreamCaptureModeThreadLocal));
  return stream;
}

void* graph_capture_end(void* stream) {
  cudaGraph_t graph = nullptr;
  PTUNE_CUDA_CHECK(cudaStreamEndCapture(static_cast<cudaStream_t>(stream), &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  PTUNE_CUDA_CHECK(status);
  return exec;
}

void graph_launch(void* exec, void* stream) {
  PTUNE_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), static_cast<cudaStream_t>(stream)));
}

void graph_destroy(void* exec) {
  if (exec != nullptr) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec));
}

void* cublaslt_handle(int device_index) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  DeviceCache& cache = r.at(device_index);
  if (cache.lt == nullptr) {
    PTUNE_CUDA_CHECK(cudaSetDevice(device_index));
    PTUNE_CUBLAS_CHECK(cublasLtCreate(&cache.lt));
  }
  return cache.lt;
}

}  // namespace ptune::cuda
