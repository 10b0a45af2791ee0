#include "framework/dist/nccl_communicator.h"

#ifdef PTUNE_HAS_NCCL

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <thread>

#include "framework/core/error.h"

// An NCCL call that failed: the collective, the rank, NCCL's code and its
// last message (which names the transport or the peer).
#define PTUNE_NCCL_CHECK(expr, what)                                                                      \
  do {                                                                                                    \
    const ncclResult_t nccl_result_ = (expr);                                                             \
    PTUNE_CHECK(nccl_result_ == ncclSuccess, "{} failed on rank {}: {} ({})", what, rank_,               \
                ncclGetErrorString(nccl_result_), ncclGetLastError(comm_handle_));                        \
  } while (0)

namespace ptune::dist {

namespace {

ncclDataType_t nccl_type(Elem e) {
  switch (e) {
    case Elem::kF32: return ncclFloat32;
    case Elem::kF64: return ncclFloat64;
    case Elem::kI64: return ncclInt64;
    case Elem::kU8: return ncclUint8;
    case Elem::kBF16: return ncclBfloat16;
  }
  return ncclUint8;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  return ncclSum;
}

cudaStream_t cuda_stream(const Stream& s) { return static_cast<cudaStream_t>(s.handle()); }

void cuda_check(cudaError_t e, const char* what) {
  PTUNE_CHECK(e == cudaSuccess, "{}: {}", what, cudaGetErrorString(e));
}

// A device buffer from the caching allocator for the staged host
// collectives; freed after the host waited for its last use.
class DeviceBuffer {
 public:
  DeviceBuffer(Device d, size_t bytes) : d_(d), p_(device_allocate(d, bytes)) {}
  ~DeviceBuffer() { device_free(d_, p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  char* get() const { return static_cast<char*>(p_); }

 private:
  Device d_;
  void* p_;
};

}  // namespace

// An all-gather queued on the comm stream, marked by `done`. wait() makes
// the compute stream wait for it; the host goes on.
class NcclRequest final : public Request {
 public:
  NcclRequest(NcclCommunicator& comm, Event done) : comm_(comm), done_(std::move(done)) {}
  ~NcclRequest() override {
    if (waited_) return;
    try {
      wait();
    } catch (const std::exception&) {
      // The communicator is aborted; the error is thrown again by its next call.
    }
  }
  void wait() override {
    if (waited_) return;
    waited_ = true;
    CommTimer t(comm_.stats());
    comm_.check_async("all_gather_async");
    done_.block(comm_.compute_);
  }

 private:
  NcclCommunicator& comm_;
  Event done_;
  bool waited_ = false;
};

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, int local_rank)
    : rank_(bootstrap.rank()), size_(bootstrap.size()), device_(Device::cuda(local_rank)) {
  const int gpus = cuda_device_count();
  PTUNE_CHECK(local_rank >= 0 && local_rank < gpus, "NCCL on rank {}: local rank {} but {} GPU(s) visible", rank_,
              local_rank, gpus);
  cuda_check(cudaSetDevice(local_rank), "cudaSetDevice");
  compute_ = Stream::default_stream(device_);
  comm_ = Stream::create(device_, Stream::Priority::kHigh);
  ready_ = Event(device_);
  done_ = Event(device_);

  NcclId id{};
  ncclUniqueId raw;
  static_assert(sizeof(raw) == sizeof(NcclId), "ncclUniqueId is 128 bytes");
  if (rank_ == 0) {
    PTUNE_NCCL_CHECK(ncclGetUniqueId(&raw), "ncclGetUniqueId");
    std::memcpy(id.data(), &raw, sizeof(raw));
  }
  bootstrap.broadcast(std::span<uint8_t>(id.data(), id.size()), 0);
  std::memcpy(&raw, id.data(), sizeof(raw));
  ncclComm_t c = nullptr;
  PTUNE_NCCL_CHECK(ncclCommInitRank(&c, size_, raw, rank_), "ncclCommInitRank");
  comm_handle_ = c;
  scratch_ = device_allocate(device_, sizeof(float));
  device_memset_zero(device_, scratch_, sizeof(float));
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_handle_ != nullptr) {
    try {
      synchronize();
      ncclCommDestroy(comm_handle_);
      comm_handle_ = nullptr;
    } catch (const std::exception&) {
      abort();  // a destructor does not throw; a failed communicator is aborted
    }
  }
  if (scratch_ != nullptr) device_free(device_, scratch_);
}

void NcclCommunicator::abort() {
  if (comm_handle_ == nullptr) return;
  ncclCommAbort(comm_handle_);
  comm_handle_ = nullptr;
}

void NcclCommunicator::check_usable(const char* what) const {
  PTUNE_CHECK(comm_handle_ != nullptr, "{} on rank {}: the NCCL communicator was aborted after an error", what,
              rank_);
}

void NcclCommunicator::check_async(const char* what) {
  check_usable(what);
  ncclResult_t async = ncclSuccess;
  PTUNE_NCCL_CHECK(ncclCommGetAsyncError(comm_handle_, &async), "ncclCommGetAsyncError");
  if (async == ncclSuccess || async == ncclInProgress) return;
  const std::string detail = ncclGetLastError(comm_handle_);
  abort();
  PTUNE_FAIL("{} on rank {}: NCCL reported an asynchronous error: {} ({}); the communicator is aborted", what, rank_,
             ncclGetErrorString(async), detail);
}

void NcclCommunicator::wait_host(const Event& e, const char* what) {
  // Polling instead of cudaEventSynchronize: a collective that never ends
  // (a dead peer) shows up as an async error, and the abort frees the GPU.
  while (!e.ready()) {
    check_async(what);
    std::this_thread::yield();
  }
  check_async(what);
}

void NcclCommunicator::synchronize() {
  check_usable("synchronize");
  done_.record(comm_);
  wait_host(done_, "synchronize");
}

void NcclCommunicator::after_compute() {
  ready_.record(compute_);
  ready_.block(comm_);
}

void NcclCommunicator::before_compute() {
  done_.record(comm_);
  done_.block(compute_);
}

NcclCommunicator::Memory NcclCommunicator::memory_of(const void* p, const char* what) const {
  const Device d = memory_device(p);
  if (d.is_cpu()) return Memory::kHost;
  PTUNE_CHECK(d == device_, "{} on rank {}: memory on {}, the communicator is on {}", what, rank_, d.str(),
              device_.str());
  return Memory::kDevice;
}

template <class Op>
void NcclCommunicator::staged(const void* in, size_t in_bytes, size_t in_offset, void* out, size_t out_bytes,
                              const char* what, Op op) {
  if (out_bytes == 0) return;
  DeviceBuffer buf(device_, out_bytes);
  // The caching allocator may hand out a block that queued kernels still
  // read: the comm stream writes it only after them.
  after_compute();
  const cudaStream_t s = cuda_stream(comm_);
  cuda_check(cudaMemcpyAsync(buf.get() + in_offset, in, in_bytes, cudaMemcpyHostToDevice, s), what);
  op(buf.get(), s);
  // Wait (polling) before the copy back: a pageable device-to-host copy
  // would block the host inside CUDA, where no error is seen.
  done_.record(comm_);
  wait_host(done_, what);
  cuda_check(cudaMemcpyAsync(out, buf.get(), out_bytes, cudaMemcpyDeviceToHost, s), what);
  cuda_check(cudaStreamSynchronize(s), what);
}

void NcclCommunicator::barrier() {
  CommTimer t(stats_);
  check_async("barrier");
  after_compute();
  PTUNE_NCCL_CHECK(ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_handle_, cuda_stream(comm_)),
                   "ncclAllReduce (barrier)");
  done_.record(comm_);
  wait_host(done_, "barrier");
}

void NcclCommunicator::all_reduce_raw(void* data, int64_t count, Elem e, ReduceOp op) {
  CommTimer t(stats_);
  check_async("all_reduce");
  const size_t n = size_t(count), bytes = n * elem_size(e);
  if (memory_of(data, "all_reduce") == Memory::kHost) {
    staged(data, bytes, 0, data, bytes, "all_reduce", [&](char* d, cudaStream_t s) {
      PTUNE_NCCL_CHECK(ncclAllReduce(d, d, n, nccl_type(e), nccl_op(op), comm_handle_, s), "ncclAllReduce");
    });
  } else {
    after_compute();
    PTUNE_NCCL_CHECK(ncclAllReduce(data, data, n, nccl_type(e), nccl_op(op), comm_handle_, cuda_stream(comm_)),
                     "ncclAllReduce");
    before_compute();
  }
  stats_.all_reduce_bytes += int64_t(bytes);
}

void NcclCommunicator::all_gather_raw(const void* send, void* recv, int64_t count, Elem e) {
  CommTimer t(stats_);
  check_async("all_gather");
  const Memory m = memory_of(send, "all_gather");
  PTUNE_CHECK(memory_of(recv, "all_gather") == m, "all_gather on rank {}: send and recv on different devices",
              rank_);
  const size_t n = size_t(count), bytes = n * elem_size(e);
  if (m == Memory::kHost) {
    // In place on the device: this rank's part at its offset of the output.
    staged(send, bytes, size_t(rank_) * bytes, recv, bytes * size_t(size_), "all_gather",
           [&](char* d, cudaStream_t s) {
             PTUNE_NCCL_CHECK(ncclAllGather(d + size_t(rank_) * bytes, d, n, nccl_type(e), comm_handle_, s),
                              "ncclAllGather");
           });
  } else {
    after_compute();
    PTUNE_NCCL_CHECK(ncclAllGather(send, recv, n, nccl_type(e), comm_handle_, cuda_stream(comm_)), "ncclAllGather");
    before_compute();
  }
  stats_.all_gather_bytes += int64_t(bytes) * size_;
}

std::unique_ptr<Request> NcclCommunicator::all_gather_async_raw(const void* send, void* recv, int64_t count, Elem e) {
  const Memory m = memory_of(send, "all_gather_async");
  if (m == Memory::kHost) {
    // Host buffers have no stream to wait on: gathered before returning.
    all_gather_raw(send, recv, count, e);
    return std::make_unique<NcclRequest>(*this, Event(device_));
  }
  CommTimer t(stats_);
  check_async("all_gather_async");
  PTUNE_CHECK(memory_of(recv, "all_gather_async") == m,
              "all_gather_async on rank {}: send and recv on different devices", rank_);
  after_compute();
  PTUNE_NCCL_CHECK(ncclAllGather(send, recv, size_t(count), nccl_type(e), comm_handle_, cuda_stream(comm_)),
                   "ncclAllGather (async)");
  Event done(device_);
  done.record(comm_);
  stats_.all_gather_bytes += count * size_ * int64_t(elem_size(e));
  return std::make_unique<NcclRequest>(*this, std::move(done));
}

void NcclCommunicator::broadcast_raw(void* data, int64_t count, Elem e, int root) {
  CommTimer t(stats_);
  check_async("broadcast");
  PTUNE_CHECK(root >= 0 && root < size_, "broadcast: root {} of {} ranks", root, size_);
  const size_t n = size_t(count), bytes = n * elem_size(e);
  if (memory_of(data, "broadcast") == Memory::kHost) {
    staged(data, bytes, 0, data, bytes, "broadcast", [&](char* d, cudaStream_t s) {
      PTUNE_NCCL_CHECK(ncclBroadcast(d, d, n, nccl_type(e), root, comm_handle_, s), "ncclBroadcast");
    });
  } else {
    after_compute();
    PTUNE_NCCL_CHECK(ncclBroadcast(data, data, n, nccl_type(e), root, comm_handle_, cuda_stream(comm_)),
                     "ncclBroadcast");
    before_compute();
  }
  stats_.broadcast_bytes += int64_t(bytes);
}

std::unique_ptr<NcclCommunicator> make_nccl_communicator(Communicator& bootstrap, int local_rank) {
  return std::make_unique<NcclCommunicator>(bootstrap, local_rank);
}

}  // namespace ptune::dist

#endif
