#include "framework/ops/profile.h"

#include <algorithm>
#include <map>

#include "framework/core/stream.h"

namespace ptune::ops {

namespace {

struct Record {
  const char* op;
  Device device;
  Event start, end;  // GPU ops
  double host_ms;    // CPU ops
};

// The pool: records_[0, used_) belong to the current profile.
std::vector<Record>& records() {
  static std::vector<Record> r;
  return r;
}
size_t used = 0;
int depth = 0;  // ops open on the host thread that runs the step

}  // namespace

void OpProfile::enable(bool on) {
  enabled_ = on;
  reset();
}

void OpProfile::reset() { used = 0; }

std::vector<OpProfile::Row> OpProfile::collect() {
  std::map<std::string, Row> by_op;
  for (size_t i = 0; i < used; ++i) {
    Record& r = records()[i];
    Row& row = by_op[r.op];
    row.op = r.op;
    if (r.device.is_cuda()) {
      r.end.synchronize();
      row.ms += Event::elapsed_ms(r.start, r.end);
    } else {
      row.ms += r.host_ms;
    }
    ++row.calls;
  }
  std::vector<Row> rows;
  for (auto& [name, row] : by_op) rows.push_back(row);
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
  return rows;
}

ProfileScope::ProfileScope(const char* op, Device device) : device_(device) {
  if (!OpProfile::enabled()) return;
  counted_ = true;
  if (depth++ > 0) return;
  std::vector<Record>& r = records();
  // A pool entry serves one device; an entry of the other kind is replaced.
  if (used == r.size()) r.push_back({op, device, Event(device, Event::Timing::kEnabled),
                                     Event(device, Event::Timing::kEnabled), 0.0});
  if (r[used].device != device)
    r[used] = {op, device, Event(device, Event::Timing::kEnabled), Event(device, Event::Timing::kEnabled), 0.0};
  r[used].op = op;
  slot_ = int64_t(used++);
  if (device.is_cuda()) r[size_t(slot_)].start.record(Stream::default_stream(device));
  else start_ = std::chrono::steady_clock::now();
}

ProfileScope::~ProfileScope() {
  if (counted_) --depth;
  if (slot_ < 0) return;
  Record& r = records()[size_t(slot_)];
  if (device_.is_cuda()) r.end.record(Stream::default_stream(device_));
  else r.host_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
}

}  // namespace ptune::ops
