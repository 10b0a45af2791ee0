// NCCL for device memory (CUDA builds linked with NCCL: the build defines
// PTUNE_NCCL). MPI bootstraps it: rank 0 creates the NCCL unique id, the
// bootstrap communicator broadcasts it, every rank joins on its local GPU.
//
// Streams. Collectives run on the communicator's own communication stream
// (non-blocking, high priority); the ops run on the compute stream,
// Stream::default_stream(device). On device memory nothing blocks the host:
//   - every collective first makes the comm stream wait for the compute
//     work queued so far (event compute → comm): the data it reads is
//     written, and a buffer the caching allocator handed out again is no
//     longer read by earlier kernels;
//   - a synchronous collective (all_reduce, all_gather, broadcast) then
//     makes the compute stream wait for it (event comm → compute): later
//     kernels, and host reads through the default stream (Tensor::to), see
//     the result;
//   - all_gather_async records an event on the comm stream and returns;
//     Request::wait() makes the compute stream wait on it, so the gather of
//     the next unit overlaps the kernels of the current one.
// Host memory (the trainer's flags, counts and metrics) is staged through
// the GPU on the comm stream after the queued compute work, and the host
// waits for the result. CommStats count bytes as the MPI communicator does;
// their seconds are host time (enqueueing, and the host waits).
//
// Failure. Errors of an NCCL call throw, naming the collective. Where the
// host waits (host-memory collectives, barrier, synchronize) it polls
// ncclCommGetAsyncError: an asynchronous error (a peer that died, a network
// failure) aborts the communicator (ncclCommAbort) and throws, instead of
// hanging. Device-memory collectives never wait on the host, so an error in
// one surfaces at the next poll; a rank that throws ends the job through
// its main (MpiSession::abort → MPI_Abort), which kills the ranks still
// blocked in a collective. NCCL's own watchdog is not used: there is no
// timeout, a slow rank is waited for.
#pragma once

#include "framework/dist/communicator.h"

#if defined(PTUNE_CUDA) && defined(PTUNE_NCCL)
#define PTUNE_HAS_NCCL 1

#include <array>
#include <memory>

#include "framework/core/stream.h"

struct ncclComm;  // nccl.h's ncclComm_t is a ncclComm*

namespace ptune::dist {

// The 128-byte ncclUniqueId as plain bytes, so that bootstrapping needs no
// NCCL type in the interface.
using NcclId = std::array<uint8_t, 128>;

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap`'s ranks (same rank and size); this rank's
  // GPU is local_rank. A one-rank communicator is valid (bootstrap: the
  // SingleCommunicator).
  NcclCommunicator(Communicator& bootstrap, int local_rank);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Every rank's queued work (compute included) done; the host waits.
  void barrier() override;
  bool supports(Device device) const override { return device.is_cpu() || device == device_; }

  Device device() const { return device_; }
  // The communication stream (for callers that order their own work on it).
  const Stream& stream() const { return comm_; }
  // The host waits for every collective queued so far (polling for errors).
  void synchronize();
  // Cancels this rank's collectives in flight (ncclCommAbort); every later
  // call throws. Safe to call twice.
  void abort();

 protected:
  void all_reduce_raw(void* data, int64_t count, Elem e, ReduceOp op) override;
  void all_gather_raw(const void* send, void* recv, int64_t count, Elem e) override;
  std::unique_ptr<Request> all_gather_async_raw(const void* send, void* recv, int64_t count, Elem e) override;
  void broadcast_raw(void* data, int64_t count, Elem e, int root) override;

 private:
  friend class NcclRequest;
  enum class Memory : uint8_t { kHost, kDevice };
  Memory memory_of(const void* p, const char* what) const;
  void check_usable(const char* what) const;
  // Throws (after aborting) if NCCL reported an asynchronous error.
  void check_async(const char* what);
  void wait_host(const Event& e, const char* what);
  void after_compute();   // comm waits for the compute work queued so far
  void before_compute();  // compute waits for the comm work queued so far
  // Host memory: copied to a device buffer, `op` run on it on the comm
  // stream, copied back; `in` bytes up at in_offset, `out` bytes back.
  template <class Op>
  void staged(const void* in, size_t in_bytes, size_t in_offset, void* out, size_t out_bytes, const char* what, Op op);

  int rank_ = 0, size_ = 1;
  Device device_;
  ncclComm* comm_handle_ = nullptr;
  Stream compute_, comm_;
  Event ready_, done_;  // compute → comm, comm → compute
  void* scratch_ = nullptr;  // one float on the device: the barrier's all-reduce
};

// make_unique<NcclCommunicator>, for callers that only need the interface.
std::unique_ptr<NcclCommunicator> make_nccl_communicator(Communicator& bootstrap, int local_rank);

}  // namespace ptune::dist

#endif
