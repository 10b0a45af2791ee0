#include "framework/core/stream.h"

#include <utility>

#include "framework/core/error.h"

#ifdef PTUNE_CUDA
#include "framework/core/memory_cuda.h"
#endif

namespace ptune {

#ifndef PTUNE_CUDA
namespace {
[[noreturn]] void no_cuda() { PTUNE_FAIL("this ptune was built without CUDA (configure with -DPTUNE_CUDA=ON)"); }
}  // namespace
#endif

int cuda_device_count() {
#ifdef PTUNE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

Stream Stream::default_stream(Device device) {
  Stream s;
  s.device_ = device;
  return s;
}

Stream Stream::create(Device device, Priority priority) {
  Stream s;
  s.device_ = device;
  if (device.is_cpu()) return s;
#ifdef PTUNE_CUDA
  s.handle_ = cuda::stream_create(device.index, int(priority));
  s.owned_ = true;
#else
  (void)priority;
  no_cuda();
#endif
  return s;
}

Stream::~Stream() {
#ifdef PTUNE_CUDA
  if (owned_) cuda::stream_destroy(handle_);
#endif
}

Stream::Stream(Stream&& o) noexcept
    : device_(o.device_), handle_(std::exchange(o.handle_, nullptr)), owned_(std::exchange(o.owned_, false)) {}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
#ifdef PTUNE_CUDA
    if (owned_) cuda::stream_destroy(handle_);
#endif
    device_ = o.device_;
    handle_ = std::exchange(o.handle_, nullptr);
    owned_ = std::exchange(o.owned_, false);
  }
  return *this;
}

void Stream::synchronize() const {
  if (device_.is_cpu()) return;
#ifdef PTUNE_CUDA
  cuda::stream_synchronize(handle_);
#endif
}

Event::Event(Device device, Timing timing) : device_(device) {
  if (device.is_cpu()) return;
#ifdef PTUNE_CUDA
  handle_ = cuda::event_create(device.index, timing == Timing::kEnabled);
#else
  (void)timing;
  no_cuda();
#endif
}

Event::~Event() {
#ifdef PTUNE_CUDA
  cuda::event_destroy(handle_);
#endif
}

Event::Event(Event&& o) noexcept : device_(o.device_), handle_(std::exchange(o.handle_, nullptr)) {}

Event& Event::operator=(Event&& o) noexcept {
  if (this != &o) {
#ifdef PTUNE_CUDA
    cuda::event_destroy(handle_);
#endif
    device_ = o.device_;
    handle_ = std::exchange(o.handle_, nullptr);
  }
  return *this;
}

void Event::record(const Stream& stream) {
  PTUNE_CHECK(stream.device() == device_, "event on {} recorded on a stream of {}", device_.str(),
              stream.device().str());
  if (device_.is_cpu()) return;
#ifdef PTUNE_CUDA
  cuda::event_record(handle_, stream.handle());
#endif
}

void Event::block(const Stream& stream) const {
  if (device_.is_cpu()) return;
#ifdef PTUNE_CUDA
  cuda::stream_wait_event(stream.handle(), handle_);
#else
  (void)stream;
#endif
}

void Event::synchronize() const {
  if (device_.is_cpu()) return;
#ifdef PTUNE_CUDA
  cuda::event_synchronize(handle_);
#endif
}

bool Event::ready() const {
  if (device_.is_cpu()) return true;
#ifdef PTUNE_CUDA
  return cuda::event_query(handle_);
#else
  return true;
#endif
}

float Event::elapsed_ms(const Event& start, const Event& end) {
  PTUNE_CHECK(start.device_.is_cuda() && end.device_.is_cuda(), "Event::elapsed_ms needs two CUDA events");
#ifdef PTUNE_CUDA
  return cuda::event_elapsed_ms(start.handle_, end.handle_);
#else
  no_cuda();
#endif
}

Graph::~Graph() {
#ifdef PTUNE_CUDA
  cuda::graph_destroy(exec_);
#endif
}

void Graph::begin(const Stream& stream) {
  PTUNE_CHECK(stream.device().is_cuda() && stream.handle() != nullptr,
              "graph capture needs a created CUDA stream, not the default stream");
#ifdef PTUNE_CUDA
  cuda::graph_destroy(exec_);
  exec_ = nullptr;
  cuda::graph_capture_begin(stream.handle());
#endif
}

void Graph::end(const Stream& stream) {
#ifdef PTUNE_CUDA
  exec_ = cuda::graph_capture_end(stream.handle());
#else
  (void)stream;
  no_cuda();
#endif
}

void Graph::replay(const Stream& stream) const {
  PTUNE_CHECK(exec_ != nullptr, "Graph::replay before a capture");
#ifdef PTUNE_CUDA
  cuda::graph_launch(exec_, stream.handle());
#else
  (void)stream;
#endif
}

}  // namespace ptune
