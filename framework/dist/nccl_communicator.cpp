#include "framework/dist/nccl_communicator.h"

#ifdef PTUNE_HAS_NCCL

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "framework/core/error.h"

namespace ptune::dist {

namespace {

void check(ncclResult_t r, const char* what) {
  PTUNE_CHECK(r == ncclSuccess, "{} failed: {}", what, ncclGetErrorString(r));
}

ncclDataType_t nccl_type(Elem e) {
  switch (e) {
    case Elem::kF32: return ncclFloat32;
    case Elem::kF64: return ncclFloat64;
    case Elem::kI64: return ncclInt64;
    case Elem::kU8: return ncclUint8;
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

// An all-gather on the communication stream, marked by an event. wait()
// blocks the host on it; the CUDA backend's gate should instead make the
// compute stream wait (cudaStreamWaitEvent) so the host never stalls.
class NcclRequest final : public Request {
 public:
  explicit NcclRequest(cudaStream_t s) {
    cudaEventCreateWithFlags(&done_, cudaEventDisableTiming);
    cudaEventRecord(done_, s);
  }
  ~NcclRequest() override { cudaEventDestroy(done_); }
  void wait() override { cudaEventSynchronize(done_); }

 private:
  cudaEvent_t done_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, int local_rank) : rank_(bootstrap.rank()), size_(bootstrap.size()) {
    NcclId id{};
    ncclUniqueId raw;
    if (rank_ == 0) {
      check(ncclGetUniqueId(&raw), "ncclGetUniqueId");
      std::memcpy(id.data(), &raw, sizeof(raw));
    }
    bootstrap.broadcast(std::span<uint8_t>(id.data(), id.size()), 0);
    std::memcpy(&raw, id.data(), sizeof(raw));
    PTUNE_CHECK(cudaSetDevice(local_rank) == cudaSuccess, "cudaSetDevice({}) failed", local_rank);
    cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    check(ncclCommInitRank(&comm_, size_, raw, rank_), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void barrier() override {
    float one = 0.0f;  // a one-element all-reduce is NCCL's barrier
    float* d = nullptr;
    cudaMalloc(&d, sizeof(float));
    cudaMemcpy(d, &one, sizeof(float), cudaMemcpyHostToDevice);
    check(ncclAllReduce(d, d, 1, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
    cudaStreamSynchronize(stream_);
    cudaFree(d);
  }

 protected:
  // Device pointers; blocking calls synchronise the communication stream.
  void all_reduce_raw(void* data, int64_t count, Elem e, ReduceOp op) override {
    check(ncclAllReduce(data, data, size_t(count), nccl_type(e), nccl_op(op), comm_, stream_), "ncclAllReduce");
    cudaStreamSynchronize(stream_);
    stats_.all_reduce_bytes += count * int64_t(elem_size(e));
  }
  void all_gather_raw(const void* send, void* recv, int64_t count, Elem e) override {
    all_gather_async_raw(send, recv, count, e)->wait();
  }
  std::unique_ptr<Request> all_gather_async_raw(const void* send, void* recv, int64_t count, Elem e) override {
    check(ncclAllGather(send, recv, size_t(count), nccl_type(e), comm_, stream_), "ncclAllGather");
    stats_.all_gather_bytes += count * size_ * int64_t(elem_size(e));
    return std::make_unique<NcclRequest>(stream_);
  }
  void broadcast_raw(void* data, int64_t count, Elem e, int root) override {
    check(ncclBroadcast(data, data, size_t(count), nccl_type(e), root, comm_, stream_), "ncclBroadcast");
    cudaStreamSynchronize(stream_);
    stats_.broadcast_bytes += count * int64_t(elem_size(e));
  }

 private:
  int rank_, size_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int local_rank) {
  return std::make_unique<NcclCommunicator>(bootstrap, local_rank);
}

}  // namespace ptune::dist

#endif
