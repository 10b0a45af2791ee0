// CUDA memory, streams and events behind core/device.h and core/stream.h.
// Plain C++ declarations: the CUDA headers stay inside memory_cuda.cu.
//
// Device memory goes through a caching allocator: a freed block returns to
// a per-device free list keyed by its rounded size and is handed out again,
// so once the first steps have touched every size a steady-state step never
// calls cudaMalloc. Blocks are reused in host order; that is safe because
// every kernel of a step runs on one compute stream (a block freed while a
// kernel on another stream still reads it must be freed after an event
// recorded on that stream is waited for — see docs/cuda.md).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ptune::cuda {

void* allocate(int device_index, size_t bytes);
void free(int device_index, void* ptr);
void copy(void* dst, const void* src, size_t bytes);  // cudaMemcpyDefault, synchronous
void memset_zero(void* ptr, size_t bytes);

struct AllocatorStats {
  uint64_t system_allocations = 0;  // cudaMalloc calls so far
  uint64_t cached_bytes = 0;        // held in free lists
  uint64_t in_use_bytes = 0;        // handed out, not yet freed
};
AllocatorStats allocator_stats(int device_index);
// Returns every cached block to the driver (cudaFree).
void empty_cache(int device_index);

// Number of visible devices; 0 when there is no driver or no GPU (never throws).
int device_count();

// Streams and events as opaque handles (cudaStream_t / cudaEvent_t).
void* stream_create(int device_index, int priority);
void stream_destroy(void* stream);
void stream_synchronize(void* stream);
void* event_create(int device_index, bool timing);
void event_destroy(void* event);
void event_record(void* event, void* stream);
void stream_wait_event(void* stream, void* event);
void event_synchronize(void* event);
bool event_query(void* event);
float event_elapsed_ms(void* start, void* end);

// CUDA-graph capture of everything launched on a stream.
void* graph_capture_begin(void* stream);
void* graph_capture_end(void* stream);  // returns an executable graph
void graph_launch(void* exec, void* stream);
void graph_destroy(void* exec);

// The per-device cuBLASLt handle (cublasLtHandle_t), created on first use.
void* cublaslt_handle(int device_index);

}  // namespace ptune::cuda
