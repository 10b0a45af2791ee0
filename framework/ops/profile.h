// Per-op GPU time, for `ptune bench --profile`: while enabled, every op
// that PTUNE_ROUTE sends to CUDA is bracketed by two timing events on its
// stream, and collect() sums the elapsed times by op name. Disabled (the
// default) it costs one branch per op. Events come from a pool reused after
// reset(), so profiled steps stay allocation-free once warm.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "framework/core/device.h"

namespace ptune::ops {

class OpProfile {
 public:
  static void enable(bool on);
  static bool enabled() { return enabled_; }
  // (op, total ms, calls) since the last reset, largest first; waits for
  // the recorded events.
  struct Row {
    std::string op;
    double ms = 0.0;
    int64_t calls = 0;
  };
  static std::vector<Row> collect();
  static void reset();

 private:
  static inline bool enabled_ = false;
};

// Records the start event on construction and the end on destruction.
class ProfileScope {
 public:
  ProfileScope(const char* op, Device device);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  int64_t slot_ = -1;  // -1: profiling off
  Device device_;
};

}  // namespace ptune::ops
