#include "framework/dist/communicator.h"

#include <cstring>

#include "framework/core/error.h"

namespace ptune::dist {

size_t elem_size(Elem e) {
  switch (e) {
    case Elem::kF32: return 4;
    case Elem::kF64: return 8;
    case Elem::kI64: return 8;
    case Elem::kU8: return 1;
  }
  return 0;
}

void Communicator::check_gather(int64_t send, int64_t recv) const {
  PTUNE_CHECK(recv == send * size(), "all_gather: {} elements received for {} sent by each of {} ranks", recv, send,
              size());
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
  if (send != recv && bytes > 0) std::memmove(recv, send, bytes);
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
