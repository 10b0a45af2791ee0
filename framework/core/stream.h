// Streams and events with plain C++ types, so that public headers (ops,
// dist) can name them without the CUDA headers.
//
// The public ops (ops/*.h) run on a device's default stream; a launcher in
// ops/cuda/kernels.h takes an explicit Stream. A training step uses two:
// the compute stream and a communication stream (NCCL), ordered by events:
//   compute.record(grads_ready); comm.wait(grads_ready); all_reduce on comm;
//   comm.record(reduced); compute.wait(reduced); optimizer on compute.
// On the CPU every operation is a no-op (CPU work is already ordered).
#pragma once

#include "framework/core/device.h"

namespace ptune {

class Stream {
 public:
  enum class Priority : int { kNormal = 0, kHigh = -1 };  // CUDA: lower is higher

  // The device's default stream (CUDA's legacy stream; not owned).
  static Stream default_stream(Device device = Device::cpu());
  // A new stream that does not synchronise with the default stream; owned.
  static Stream create(Device device, Priority priority = Priority::kNormal);

  Stream() = default;
  ~Stream();
  Stream(Stream&& o) noexcept;
  Stream& operator=(Stream&& o) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  Device device() const { return device_; }
  // cudaStream_t, or nullptr for the default stream / the CPU.
  void* handle() const { return handle_; }
  void synchronize() const;

 private:
  Device device_;
  void* handle_ = nullptr;
  bool owned_ = false;
};

class Event {
 public:
  enum class Timing : uint8_t { kDisabled, kEnabled };

  explicit Event(Device device = Device::cpu(), Timing timing = Timing::kDisabled);
  ~Event();
  Event(Event&& o) noexcept;
  Event& operator=(Event&& o) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Marks the point in `stream` reached by the work queued so far.
  void record(const Stream& stream);
  // Makes `stream` wait (on the device, not the host) for that point.
  void block(const Stream& stream) const;
  void synchronize() const;  // host waits
  bool ready() const;
  // Milliseconds between two recorded timing events.
  static float elapsed_ms(const Event& start, const Event& end);

  void* handle() const { return handle_; }

 private:
  Device device_;
  void* handle_ = nullptr;
};

// Captures everything launched on a (non-default) stream between begin()
// and end() into a CUDA graph that replay() launches again with one call.
class Graph {
 public:
  Graph() = default;
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  void begin(const Stream& stream);
  void end(const Stream& stream);
  void replay(const Stream& stream) const;
  bool captured() const { return exec_ != nullptr; }

 private:
  void* exec_ = nullptr;
};

// GPUs visible to this process (0 without a driver, or in a CPU build).
int cuda_device_count();

}  // namespace ptune
