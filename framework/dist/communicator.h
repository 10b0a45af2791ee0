// Collectives across the ranks of a job (DESIGN.md §4).
//
// A Communicator moves typed spans or tensors, so every count is an element
// count by construction. Implementations: SingleCommunicator (one process;
// the collectives are copies or no-ops, on host or device memory),
// MpiCommunicator (host memory over MPI, mpi_communicator.h) and, in CUDA
// builds with NCCL, NcclCommunicator (device memory, nccl_communicator.h).
// Every call is collective: all ranks make the same calls in the same order
// with the same counts.
//
// Raw bytes (uint8_t spans) move any dtype through all-gather and
// broadcast: that is how sharded weights gather a unit whatever its dtype.
//
// The communicator counts the bytes it moves (CommStats), so a run can
// report its communication volume and check it against the model
// (2Ψ all-gathered per step, Ψ with keep_for_backward; 4·trainables
// all-reduced).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

#include "framework/core/tensor.h"

namespace ptune::dist {

enum class ReduceOp : uint8_t { kSum, kMax, kMin };
// kBF16: 16-bit brain floats (DType::kBF16 storage); NCCL reduces them,
// MPI only moves them (all-gather, broadcast).
enum class Elem : uint8_t { kF32, kF64, kI64, kU8, kBF16 };

template <class T>
constexpr Elem elem_of() {
  using U = std::remove_const_t<T>;
  if constexpr (std::is_same_v<U, float>) return Elem::kF32;
  else if constexpr (std::is_same_v<U, double>) return Elem::kF64;
  else if constexpr (std::is_same_v<U, int64_t>) return Elem::kI64;
  else {
    static_assert(std::is_same_v<U, uint8_t> || std::is_same_v<U, char>, "unsupported element type");
    return Elem::kU8;
  }
}
size_t elem_size(Elem e);
// The Elem of a tensor dtype (f32, bf16, i64; others are an error).
Elem elem_of(DType t);

// Where `p` points: a CUDA device for device (or managed) memory, the CPU
// for host memory — always the CPU in a CPU build or without a GPU.
Device memory_device(const void* p);

// Bytes each rank received or contributed, by collective, since the last
// reset: all-gather counts the gathered output (what a rank receives,
// N·count·size, the convention of "2Ψ per step"), all-reduce counts the
// buffer once (count·size).
struct CommStats {
  int64_t all_gather_bytes = 0;
  int64_t all_reduce_bytes = 0;
  int64_t broadcast_bytes = 0;
  double seconds = 0.0;  // wall time spent inside collectives (waits included)
};

// Adds the wall time of its scope to stats.seconds.
class CommTimer {
 public:
  explicit CommTimer(CommStats& s) : s_(s), t0_(std::chrono::steady_clock::now()) {}
  ~CommTimer() { s_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  CommTimer(const CommTimer&) = delete;
  CommTimer& operator=(const CommTimer&) = delete;

 private:
  CommStats& s_;
  std::chrono::steady_clock::time_point t0_;
};

// A non-blocking collective in flight; wait() completes it (and is called
// by the destructor if nobody did).
class Request {
 public:
  virtual ~Request() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() = 0;
  // Whether its collectives take memory of `device` (MPI: host memory;
  // NCCL: its GPU's memory, and host memory staged through it).
  virtual bool supports(Device device) const = 0;

  template <class T>
  void all_reduce(std::span<T> data, ReduceOp op = ReduceOp::kSum) {
    all_reduce_raw(data.data(), int64_t(data.size()), elem_of<T>(), op);
  }
  // recv (size()·n) = the ranks' send (n) spans, in rank order.
  template <class T>
  void all_gather(std::span<const T> send, std::span<T> recv) {
    check_gather(int64_t(send.size()), int64_t(recv.size()));
    all_gather_raw(send.data(), recv.data(), int64_t(send.size()), elem_of<T>());
  }
  // Same, returning at once; the buffers must live until wait().
  template <class T>
  std::unique_ptr<Request> all_gather_async(std::span<const T> send, std::span<T> recv) {
    check_gather(int64_t(send.size()), int64_t(recv.size()));
    return all_gather_async_raw(send.data(), recv.data(), int64_t(send.size()), elem_of<T>());
  }
  template <class T>
  void broadcast(std::span<T> data, int root = 0) {
    broadcast_raw(data.data(), int64_t(data.size()), elem_of<T>(), root);
  }

  // Contiguous tensors, the element type from their dtype (f32, bf16, i64)
  // and the memory from their device (checked against supports()).
  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::kSum);
  void all_gather(const Tensor& send, const Tensor& recv);  // recv (size()·n) of send (n)
  std::unique_ptr<Request> all_gather_async(const Tensor& send, const Tensor& recv);
  void broadcast(const Tensor& t, int root = 0);

  CommStats& stats() { return stats_; }
  const CommStats& stats() const { return stats_; }

 protected:
  virtual void all_reduce_raw(void* data, int64_t count, Elem e, ReduceOp op) = 0;
  virtual void all_gather_raw(const void* send, void* recv, int64_t count, Elem e) = 0;
  virtual std::unique_ptr<Request> all_gather_async_raw(const void* send, void* recv, int64_t count, Elem e) = 0;
  virtual void broadcast_raw(void* data, int64_t count, Elem e, int root) = 0;
  void check_gather(int64_t send, int64_t recv) const;
  void check_memory(const Tensor& t, const char* what) const;

  CommStats stats_;
};

// One process: all-reduce and broadcast leave the data as it is, all-gather
// copies send into recv (host or device memory; a device copy is a
// synchronous cudaMemcpy, ordered after the default stream's work).
class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void barrier() override {}
  bool supports(Device) const override { return true; }

 protected:
  void all_reduce_raw(void* data, int64_t count, Elem e, ReduceOp op) override;
  void all_gather_raw(const void* send, void* recv, int64_t count, Elem e) override;
  std::unique_ptr<Request> all_gather_async_raw(const void* send, void* recv, int64_t count, Elem e) override;
  void broadcast_raw(void* data, int64_t count, Elem e, int root) override;
};

}  // namespace ptune::dist
