#include "framework/ops/profile.h"

#include <algorithm>
#include <map>

#include "framework/core/stream.h"

namespace ptune::ops {

namespace {

struct Record {
  const char* op;
  Event start, end;
};

// The pool: records_[0, used_) belong to the current profile.
std::vector<Record>& records() {
  static std::vector<Record> r;
  return r;
}
size_t used = 0;

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
    r.end.synchronize();
    Row& row = by_op[r.op];
    row.op = r.op;
    row.ms += Event::elapsed_ms(r.start, r.end);
    ++row.calls;
  }
  std::vector<Row> rows;
  for (auto& [name, row] : by_op) rows.push_back(row);
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ms > b.ms; });
  return rows;
}

ProfileScope::ProfileScope(const char* op, Device device) : device_(device) {
  if (!OpProfile::enabled()) return;
  std::vector<Record>& r = records();
  if (used == r.size())
    r.push_back({op, Event(device, Event::Timing::kEnabled), Event(device, Event::Timing::kEnabled)});
  r[used].op = op;
  r[used].start.record(Stream::default_stream(device));
  slot_ = int64_t(used++);
}

ProfileScope::~ProfileScope() {
  if (slot_ >= 0) records()[size_t(slot_)].end.record(Stream::default_stream(device_));
}

}  // namespace ptune::ops
