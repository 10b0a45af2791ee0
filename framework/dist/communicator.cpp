#include "framework/dist/communicator.h"

#include <cstring>

#include "framework/core/error.h"
#include "framework/core/stream.h"

#ifdef PTUNE_CUDA
#include <cuda_runtime.h>

#include "framework/core/memory_cuda.h"
#endif

namespace ptune::dist {

size_t elem_size(Elem e) {
  switch (e) {
    case Elem::kF32: return 4;
    case Elem::kF64: return 8;
    case Elem::kI64: return 8;
    case Elem::kU8: return 1;
    case Elem::kBF16: return 2;
  }
  return 0;
}

Elem elem_of(DType t) {
  switch (t) {
    case DType::kF32: return Elem::kF32;
    case DType::kBF16: return Elem::kBF16;
    case DType::kI64: return Elem::kI64;
    default: break;
  }
  PTUNE_FAIL("collectives take f32, bf16 or i64 tensors, not {}", dtype_name(t));
}

Device memory_device(const void* p) {
#ifdef PTUNE_CUDA
  // Without a GPU every pointer is a host pointer (and the runtime is never
  // asked about one, which would fail).
  if (p == nullptr || cuda_device_count() == 0) return Device::cpu();
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return Device::cpu();
  }
  if (a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged) return Device::cuda(a.device);
#else
  (void)p;
#endif
  return Device::cpu();
}

void Communicator::check_gather(int64_t send, int64_t recv) const {
  PTUNE_CHECK(recv == send * size(), "all_gather: {} elements received for {} sent by each of {} ranks", recv, send,
              size());
}

void Communicator::check_memory(const Tensor& t, const char* what) const {
  PTUNE_CHECK(t.defined(), "{}: undefined tensor", what);
  PTUNE_CHECK(supports(t.device()), "{}: this communicator cannot move {} memory (GPU tensors need NCCL)", what,
              t.device().str());
}

void Communicator::all_reduce(const Tensor& t, ReduceOp op) {
  check_memory(t, "all_reduce");
  all_reduce_raw(t.raw(), t.numel(), elem_of(t.dtype()), op);
}

void Communicator::all_gather(const Tensor& send, const Tensor& recv) {
  all_gather_async(send, recv)->wait();
}

std::unique_ptr<Request> Communicator::all_gather_async(const Tensor& send, const Tensor& recv) {
  check_memory(send, "all_gather");
  check_memory(recv, "all_gather");
  PTUNE_CHECK(send.dtype() == recv.dtype() && send.device() == recv.device(),
              "all_gather: send {} on {}, recv {} on {}", dtype_name(send.dtype()), send.device().str(),
              dtype_name(recv.dtype()), recv.device().str());
  check_gather(send.numel(), recv.numel());
  return all_gather_async_raw(send.raw(), recv.raw(), send.numel(), elem_of(send.dtype()));
}

void Communicator::broadcast(const Tensor& t, int root) {
  check_memory(t, "broadcast");
  broadcast_raw(t.raw(), t.numel(), elem_of(t.dtype()), root);
}

namespace {
class DoneRequest final : public Request {
 public:
  void wait() override {}
};
}  // namespace

void SingleCommunicator::all_reduce_raw(void*, int64_t count, Elem e, ReduceOp) {
  stats_.all_reduce_bytes += count * int64_t(elem_size(e));
}

void SingleCommunicator::all_gather_raw(const void* send, void* recv, int64_t count, Elem e) {
  const size_t bytes = size_t(count) * elem_size(e);
  if (send != recv && bytes > 0) {
#ifdef PTUNE_CUDA
    // Sharded weights on a GPU in a single-process job gather device memory.
    if (memory_device(send).is_cuda() || memory_device(recv).is_cuda())
      cuda::copy(recv, send, bytes);
    else
#endif
      std::memmove(recv, send, bytes);
  }
  stats_.all_gather_bytes += int64_t(bytes);
}

std::unique_ptr<Request> SingleCommunicator::all_gather_async_raw(const void* send, void* recv, int64_t count,
                                                                  Elem e) {
  all_gather_raw(send, recv, count, e);
  return std::make_unique<DoneRequest>();
}

void SingleCommunicator::broadcast_raw(void*, int64_t count, Elem e, int root) {
  PTUNE_CHECK(root == 0, "broadcast: root {} in a single-process job", root);
  stats_.broadcast_bytes += count * int64_t(elem_size(e));
}

}  // namespace ptune::dist
